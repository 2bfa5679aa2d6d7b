// batchctl Studio: the live parts (the Runs tab and the job page), polling a JSON route every second.
// Text is set with textContent only, so nothing a job holds can become markup.
(function () {
  "use strict";
  const TERMINAL = ["Completed", "Failed", "Canceled"];

  function poll(url, every, handle) {
    let stopped = false;
    async function tick() {
      if (stopped) return;
      try {
        const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (res.ok && handle(await res.json()) === false) { stopped = true; return; }
      } catch (e) { /* the server restarts: try again */ }
      setTimeout(tick, every);
    }
    setTimeout(tick, every);
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) { const span = document.createElement("span"); span.className = cls; span.textContent = text; td.appendChild(span); }
    else td.textContent = text;
    return td;
  }

  function runsTable(table) {
    const body = table.querySelector("tbody");
    poll(table.dataset.poll, 1000, function (data) {
      const rows = data.value || [];
      body.replaceChildren(...rows.map(function (r) {
        const tr = document.createElement("tr");
        tr.dataset.job = r.name;
        const name = document.createElement("td");
        const a = document.createElement("a");
        a.href = "/studio/jobs/" + encodeURIComponent(r.name);
        a.textContent = r.name;
        name.appendChild(a);
        tr.append(name, cell(r.deployment || ""), cell(r.status, "status s-" + String(r.status).toLowerCase()),
          cell(r.created), cell(r.duration), cell(String(r.succeeded)), cell(String(r.failed)));
        return tr;
      }));
      const empty = document.getElementById("no-runs");
      if (empty && rows.length) empty.remove();
    });
  }

  function jobPage(section) {
    const first = section.dataset.status;
    if (TERMINAL.includes(first)) return;
    const status = document.getElementById("job-status");
    const progress = document.getElementById("job-progress");
    poll(section.dataset.poll, 1000, function (data) {
      status.textContent = data.status;
      status.className = "status s-" + String(data.status).toLowerCase();
      const bar = data.bar || { done: data.progress, ok: data.progress, failed: 0, text: "" };
      progress.setAttribute("aria-valuenow", String(bar.done));
      progress.setAttribute("aria-valuetext", bar.done + "%: " + bar.text);
      progress.querySelector(".bar.ok").style.width = bar.ok + "%";
      progress.querySelector(".bar.failed").style.width = bar.failed + "%";
      const text = document.getElementById("job-progress-text");
      if (text) text.textContent = bar.text;
      for (const [key, value] of Object.entries(data.counts || {})) {
        const dd = document.querySelector('[data-count="' + key + '"]');
        if (dd) dd.textContent = String(value);
      }
      if (TERMINAL.includes(data.status)) { window.location.reload(); return false; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const runs = document.querySelector("table#runs[data-poll]");
    if (runs) runsTable(runs);
    const job = document.querySelector("section#job[data-poll]");
    if (job) jobPage(job);
  });
})();
