// The live queue: the server pushes the whole queue (server-sent events) whenever it changes.
// Citizens' words are put in with textContent, never as HTML.
"use strict";

(function () {
  const body = document.getElementById("queue-items");
  const status = document.getElementById("queue-status");
  if (!body || !window.EventSource) return;

  function waited(seconds) {
    if (seconds < 60) return `${seconds}초`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}분`;
    return `${Math.floor(seconds / 3600)}시간 ${Math.floor((seconds % 3600) / 60)}분`;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function render(snapshot) {
    const rows = snapshot.items.map((item) => {
      const tr = document.createElement("tr");
      tr.dataset.kind = item.kind;
      tr.dataset.id = String(item.id);
      tr.dataset.since = item.since;
      const waiting = cell(waited(item.waiting_seconds), "waiting");
      waiting.dataset.seconds = String(item.waiting_seconds);
      const title = cell("", "title");
      const href = item.kind === "case" ? `/console/cases/${encodeURIComponent(item.title)}`
        : item.kind === "handoff" ? `/console/conversations/${item.conversation_id}`
        : item.conversation_id ? `/console/conversations/${item.conversation_id}/file` : null;
      if (href) {
        const link = document.createElement("a");
        link.href = href;
        link.textContent = item.title;
        title.append(link);
      } else {
        title.textContent = item.title;
      }
      tr.append(cell(item.kind, `kind kind-${item.kind}`), waiting, cell(item.channel), title, cell(item.detail, "detail"));
      return tr;
    });
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell("기다리는 항목이 없습니다.");
      td.colSpan = 5;
      tr.append(td);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  // Waiting times tick in the browser between pushes.
  setInterval(() => {
    for (const td of body.querySelectorAll("td.waiting")) {
      const seconds = Number(td.dataset.seconds) + 1;
      td.dataset.seconds = String(seconds);
      td.textContent = waited(seconds);
    }
  }, 1000);

  const source = new EventSource(body.dataset.events);
  source.addEventListener("open", () => { status.dataset.state = "live"; status.textContent = "실시간 live"; });
  source.addEventListener("error", () => { status.dataset.state = "reconnecting"; status.textContent = "다시 연결 중 reconnecting"; });
  source.addEventListener("queue", (event) => render(JSON.parse(event.data)));
  // The server ended the stream because the session is over: reload, which leads to the login page.
  source.addEventListener("ended", () => { source.close(); window.location.reload(); });
})();
