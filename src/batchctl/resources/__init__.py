"""The workspace's resources, one module per noun: CRUD over the registry plus resolution."""
