"""Isolated environments: a deployment's environment spec -> a content key -> a uv-built virtualenv
under `<workspace>/envs/<key>` whose Python the workers start with. Below execution, above scoring.

`spec` normalises where an environment comes from (conda file, MLflow model files); `build` builds it once
per key (temporary folder + rename, one file lock per key); `index` hands pip's index settings to uv;
`manage` chooses local vs isolated (`--env-manager`) and lists and prunes builds."""
