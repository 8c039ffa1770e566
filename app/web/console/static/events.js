// The activity page's live updates: new change-feed events arrive over server-sent events and are put at the top
// of the list, in the same shape as the server renders them. Text only (textContent), never HTML.
"use strict";
(function () {
  var list = document.getElementById("events");
  if (!list || !list.dataset.stream || !window.EventSource) {
    return;
  }
  var source = new EventSource(list.dataset.stream);
  source.addEventListener("change", function (message) {
    var event = JSON.parse(message.data);
    if (list.querySelector('li[data-seq="' + event.seq + '"]')) {
      return;
    }
    var item = document.createElement("li");
    item.dataset.seq = String(event.seq);
    item.dataset.type = event.type;
    item.className = "new";
    var time = document.createElement("time");
    time.dateTime = event.time;
    time.textContent = event.when;
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = event.text;
    item.append(time, " ", text);
    if (event.token) {
      var actor = document.createElement("span");
      actor.className = "actor";
      actor.textContent = "by " + event.token;
      item.append(" ", actor);
    }
    list.prepend(item);
    var empty = document.getElementById("no-events");
    if (empty) {
      empty.remove();
    }
  });
  source.addEventListener("error", function () {
    // EventSource reconnects by itself, resending the last id it saw; a closed stream (signed out) stays closed.
    if (source.readyState === EventSource.CLOSED) {
      var live = document.getElementById("live");
      if (live) {
        live.textContent = "Live updates stopped; reload the page to resume.";
      }
    }
  });
})();
