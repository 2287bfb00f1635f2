// A conversation the operator watches or holds: new messages every second, sending without reload.
// Citizens' words are put in with textContent, never as HTML.
"use strict";

(function () {
  const view = document.getElementById("conversation");
  const list = document.getElementById("transcript");
  if (!view || !list) return;
  const status = document.getElementById("live-status");
  const holder = document.getElementById("holder");
  const csrf = document.querySelector('meta[name="csrf-token"]');
  let lastId = Number(view.dataset.lastId) || 0;
  let heldBy = null;

  function line(message) {
    const li = document.createElement("li");
    li.className = `msg msg-${message.direction} sender-${message.sender}`;
    li.dataset.id = String(message.id);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = message.sender;
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = new Date(message.created_at).toLocaleTimeString();
    const text = document.createElement("div");
    text.className = "citizen-text";
    text.textContent = message.text;
    li.append(who, " ", when, text);
    return li;
  }

  async function poll() {
    try {
      const response = await fetch(`${list.dataset.events}?after=${lastId}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const body = await response.json();
      for (const message of body.messages) {
        if (message.id <= lastId) continue;
        list.append(line(message));
        lastId = message.id;
      }
      if (body.messages.length) list.lastElementChild.scrollIntoView({ block: "nearest" });
      if (heldBy !== null && body.held_by !== heldBy && holder) {
        holder.textContent = body.held_by ? `상담 중: ${body.held_by}` : "챗봇이 응대 중입니다. The bot has this conversation.";
      }
      heldBy = body.held_by;
      status.dataset.state = "live";
      status.textContent = "실시간 live";
    } catch (error) {
      status.dataset.state = "reconnecting";
      status.textContent = "다시 연결 중 reconnecting";
    }
    window.setTimeout(poll, 1000);
  }

  function newKey() {
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const form = document.getElementById("send-form");
  const canned = document.getElementById("canned");
  const textarea = document.getElementById("message-text");
  const sendError = document.getElementById("send-error");
  if (canned && textarea) {
    canned.addEventListener("change", () => {
      if (!canned.value) return;
      textarea.value = textarea.value ? `${textarea.value}\n${canned.value}` : canned.value;
      canned.value = "";
      textarea.focus();
    });
  }
  if (form && csrf) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      sendError.hidden = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: { Accept: "application/json", "X-CSRF-Token": csrf.content },
        });
        const body = await response.json();
        if (!response.ok) throw new Error(body.message || String(response.status));
        textarea.value = "";
        form.elements.form_key.value = newKey(); // the next message is a new one, not a resend
      } catch (error) {
        sendError.textContent = `보내지 못했습니다. Not sent: ${error.message}`;
        sendError.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
  }
  poll();
})();
