// The campaign page's live feed: new events arrive as server-sent events and go on top of the
// list. No library; EventSource reconnects by itself and resumes after the last event id.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const feed = document.getElementById("live-feed");
  if (!feed) return;
  const count = document.getElementById("live-count");
  const status = document.getElementById("live-status");
  let received = 0;
  const source = new EventSource(feed.dataset.source);
  source.onopen = () => { status.textContent = "live"; };
  source.onerror = () => { status.textContent = "reconnecting…"; };
  source.addEventListener("hit", (message) => {
    const e = JSON.parse(message.data);
    const item = document.createElement("li");
    item.dataset.id = e.id;
    item.className = "new";
    const time = document.createElement("time");
    time.textContent = new Date(e.received_at).toISOString().slice(11, 19);
    const kind = document.createElement("b");
    kind.textContent = e.kind;
    const cls = document.createElement("span");
    cls.className = "class " + e.class;
    cls.textContent = e.class.replace(/_/g, " ");
    const rest = [e.client, e.device, e.country].filter(Boolean).join(" · ");
    item.append(time, " ", kind, " ", cls);
    if (e.reasons) {
      const why = document.createElement("small");
      why.className = "reasons";
      why.textContent = "(" + e.reasons + ")";
      item.append(" ", why);
    }
    item.append(" ", rest);
    feed.prepend(item);
    while (feed.children.length > 50) feed.lastElementChild.remove();
    received += 1;
    count.textContent = String(received);
  });
  // The headline cards' new values, sent after new events.
  source.addEventListener("figures", (message) => {
    const figures = JSON.parse(message.data);
    for (const [metric, update] of Object.entries(figures)) {
      const card = document.querySelector(`[data-metric="${metric}"]`);
      if (!card) continue;
      Object.assign(card.dataset, update.data);
      card.querySelector(".value").textContent = update.text;
      card.querySelector(".note").textContent = update.note;
    }
  });
});
