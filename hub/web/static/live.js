// The live chat of the case page and of the staff chat page: new messages, who is typing,
// who is in the chat, and the case's status, without a reload, over the hub's websocket
// (docs/websocket-protocol.md). The pages work without it: the chat form posts, and the page
// shows the thread. Served by the hub itself; the Content-Security-Policy allows no other
// script. Nothing anyone wrote is ever parsed as HTML: messages are built with textContent.
"use strict";

(function () {
  var root = document.querySelector("[data-live-chat]");
  if (!root || !window.WebSocket || !window.fetch || !window.JSON) {
    return;
  }

  var TYPING_EVERY_MS = 3000; // send "typing" at most this often while typing
  var TYPING_SHOWN_MS = 5000; // show someone typing this long unless renewed
  var MAX_BACKOFF_MS = 30000;
  var READ_EVERY_MS = 2000;

  var texts = JSON.parse(root.getAttribute("data-texts"));
  var viewerKind = root.getAttribute("data-viewer");
  var caseId = root.getAttribute("data-case-id");
  var position = parseInt(root.getAttribute("data-after"), 10) || 0;
  var trackerSeq = parseInt(root.getAttribute("data-tracker-seq"), 10);
  var timeZone = root.getAttribute("data-timezone") || "Europe/Amsterdam";
  var lang = document.documentElement.lang === "en" ? "en" : "nl";
  var form = root.querySelector("[data-chat-form]");
  var textarea = form ? form.querySelector("textarea") : null;
  var csrfField = document.querySelector("input[name=csrf_token]");
  var presenceLine = root.querySelector("[data-presence]");
  var typingLine = root.querySelector("[data-typing]");
  var connectionLine = root.querySelector("[data-connection]");
  var announcer = root.querySelector("[data-announce]");
  var stateLine = root.querySelector("[data-chat-state]");

  var socket = null;
  var following = false; // the socket follows the case: lines can go out
  var everFollowed = false;
  var stopped = false;
  var attempts = 0;
  var reconnectTimer = null;
  var me = null; // {kind, name} from the server's "ready"
  var pending = {}; // ref -> {body, node}: sent, not yet acknowledged
  var pendingOrder = [];
  var acknowledged = {}; // message_id -> {node}: acknowledged, its event not yet here
  var shown = {}; // message_id -> true
  var online = {}; // name -> true
  var leftName = null;
  var typing = {}; // name -> timer
  var lastTypingSent = 0;
  var lastReadSent = 0;
  var statusChecked = false;
  var statusTimer = null;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function show(element, text) {
    if (!element) {
      return;
    }
    element.textContent = text || "";
    element.hidden = !text;
  }

  function announce(text) {
    if (announcer) {
      announcer.textContent = text;
    }
  }

  // --- the thread ---------------------------------------------------------------------------

  var dayFormat = new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "nl-NL", {
    day: "numeric",
    month: "long",
    year: "numeric",
    timeZone: timeZone,
  });
  var clockFormat = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
    timeZone: timeZone,
  });

  function when(iso) {
    var moment = iso ? new Date(iso) : new Date();
    var day = dayFormat.format(moment);
    var clock = clockFormat.format(moment);
    return lang === "en" ? day + ", " + clock : day + " om " + clock;
  }

  function channelName(channel) {
    return (texts.channels && texts.channels[channel]) || channel;
  }

  function author(message) {
    if (viewerKind === "citizen") {
      return message.direction === "inbound" ? texts.you : message.author_name || texts.fallback;
    }
    var name = message.author_name || texts.fallback;
    return message.direction === "internal" ? texts.internal + " · " + name : name;
  }

  function fromMe(message) {
    return viewerKind === "citizen"
      ? message.direction === "inbound"
      : message.direction !== "inbound";
  }

  // The same markup as the thread macro in templates/pages/macros.html.
  function messageNode(message, status) {
    var item = document.createElement("li");
    item.className = "message " + message.direction;
    var meta = document.createElement("p");
    meta.className = "meta";
    var who = document.createElement("strong");
    who.textContent = author(message);
    meta.appendChild(who);
    var rest = document.createElement("span");
    rest.textContent = " · " + channelName(message.channel) + " · " + (status || when(message.created_at));
    meta.appendChild(rest);
    item.appendChild(meta);
    if (message.subject) {
      var subject = document.createElement("p");
      subject.className = "subject";
      subject.textContent = message.subject;
      item.appendChild(subject);
    }
    var body = document.createElement("p");
    body.className = "body";
    body.textContent = message.body;
    item.appendChild(body);
    return item;
  }

  function threadList() {
    var heading = document.getElementById("thread-heading");
    var section = heading ? heading.closest("section") : null;
    if (!section) {
      return null;
    }
    var list = section.querySelector("ol.thread");
    if (!list) {
      var empty = section.querySelector("p"); // "There are no messages yet."
      if (empty) {
        empty.remove();
      }
      list = document.createElement("ol");
      list.className = "thread";
      section.appendChild(list);
    }
    return list;
  }

  function setStatus(node, text) {
    var rest = node.querySelector(".meta span");
    if (rest) {
      var parts = rest.textContent.split(" · ");
      parts[parts.length - 1] = text;
      rest.textContent = parts.join(" · ");
    }
  }

  function showMessage(frame) {
    var payload = frame.payload || {};
    var id = payload.message_id;
    if (!id || shown[id]) {
      return;
    }
    shown[id] = true;
    var message = {
      direction: payload.direction,
      channel: payload.channel,
      author_name: payload.author_name || frame.actor_name,
      subject: payload.subject,
      body: payload.body || payload.text || "",
      created_at: frame.created_at,
    };
    var node = messageNode(message);
    var mine = acknowledged[id];
    if (mine) {
      mine.node.remove();
      delete acknowledged[id];
    }
    // Events come in the log's order; lines still on their way stay below them.
    var list = threadList();
    if (list) {
      list.insertBefore(node, list.querySelector("[data-pending]"));
    }
    if (!fromMe(message)) {
      stopTyping(message.author_name || texts.fallback);
      announce(fill(texts.new_message, { name: author(message), text: message.body }));
    }
  }

  // --- the case's status --------------------------------------------------------------------

  // The status region of the page, fetched again and swapped in: the server renders it as it
  // renders the page, so the two never differ.
  function refreshStatus() {
    var region = document.querySelector("[data-live-status]");
    if (!region) {
      return;
    }
    clearTimeout(statusTimer);
    statusTimer = setTimeout(function () {
      fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.querySelector("[data-live-status]");
          var current = document.querySelector("[data-live-status]");
          if (!fresh || !current) {
            return;
          }
          current.replaceWith(document.importNode(fresh, true));
          var step = fresh.querySelector("[aria-current=step]");
          var name = "";
          if (step) {
            step = step.cloneNode(true);
            var label = step.querySelector(".state"); // "Now:", which the text says already
            if (label) {
              label.remove();
            }
            name = step.textContent.replace(/\s+/g, " ").trim();
          }
          announce(fill(texts.status_changed, { step: name }));
        })
        .catch(function () {
          // The page itself still shows the old status; the next event tries again.
        });
    }, 150);
  }

  function onEvent(frame) {
    if (frame.seq > position) {
      position = frame.seq;
    }
    var kind = frame.kind || "";
    var payload = frame.payload || {};
    if (kind === "message" || kind === "note") {
      showMessage(frame);
    } else if (kind === "chat_started" || kind === "chat_transferred") {
      show(stateLine, texts.waiting);
    } else if (kind === "chat_picked_up") {
      if (viewerKind === "citizen") {
        show(stateLine, fill(texts.picked_up, { name: payload.staff_name, agency: payload.agency_name }));
      }
    } else if (kind === "chat_closed") {
      show(stateLine, texts.closed);
      if (viewerKind === "staff" && form) {
        form.hidden = true;
      }
    } else if (kind.indexOf("chat_") !== 0 && kind !== "document_added" && kind !== "channel_fallback") {
      refreshStatus();
    }
  }

  // --- who is here, who is typing ------------------------------------------------------------

  function isMe(who) {
    return me !== null && who && who.kind === me.kind && who.name === me.name;
  }

  function renderPresence() {
    var names = Object.keys(online);
    if (names.length) {
      show(presenceLine, names.map(function (name) { return fill(texts.online, { name: name }); }).join(" "));
    } else {
      show(presenceLine, leftName ? fill(texts.left, { name: leftName }) : "");
    }
  }

  function markOnline(who) {
    if (!who || !who.name || isMe(who) || online[who.name]) {
      return;
    }
    online[who.name] = true;
    renderPresence();
  }

  function markOffline(who) {
    if (!who || !who.name || isMe(who)) {
      return;
    }
    delete online[who.name];
    leftName = who.name;
    stopTyping(who.name);
    renderPresence();
  }

  function renderTyping() {
    show(typingLine, Object.keys(typing).map(function (name) { return fill(texts.typing, { name: name }); }).join(" "));
  }

  function stopTyping(name) {
    if (typing[name]) {
      clearTimeout(typing[name]);
      delete typing[name];
      renderTyping();
    }
  }

  function onTyping(frame) {
    var who = frame.who || {};
    if (!who.name || isMe(who)) {
      return;
    }
    markOnline(who);
    clearTimeout(typing[who.name]);
    delete typing[who.name];
    if (frame.active) {
      typing[who.name] = setTimeout(function () { stopTyping(who.name); }, TYPING_SHOWN_MS);
    }
    renderTyping();
  }

  // Someone came in: a read marker tells them, in turn, that we are here (the protocol has
  // no "who is here" question; a read marker names its sender).
  function greet() {
    var now = Date.now();
    if (now - lastReadSent >= READ_EVERY_MS && send({ type: "read", case_id: caseId, seq: position })) {
      lastReadSent = now;
    }
  }

  function onPresence(frame) {
    if (frame.state === "online") {
      markOnline(frame.who);
      greet();
    } else {
      markOffline(frame.who);
    }
  }

  // --- sending --------------------------------------------------------------------------------

  function send(frame) {
    if (socket && following && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function newRef() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "c-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function sendLine(ref) {
    var line = pending[ref];
    if (!line) {
      return;
    }
    var sent = send({ type: "message", case_id: caseId, body: line.body, ref: ref });
    setStatus(line.node, sent ? texts.sending : texts.not_sent);
  }

  function onAck(frame) {
    var line = pending[frame.ref];
    if (!line) {
      return;
    }
    delete pending[frame.ref];
    pendingOrder = pendingOrder.filter(function (ref) { return ref !== frame.ref; });
    if (shown[frame.message_id]) {
      line.node.remove();
    } else {
      acknowledged[frame.message_id] = line;
    }
  }

  function onRefused(frame) {
    var line = pending[frame.ref];
    if (!line) {
      return;
    }
    delete pending[frame.ref];
    pendingOrder = pendingOrder.filter(function (ref) { return ref !== frame.ref; });
    setStatus(line.node, texts.refused);
    line.node.removeAttribute("data-pending");
    if (textarea && !textarea.value) {
      textarea.value = line.body;
    }
  }

  function sendTyping(active) {
    if (send({ type: "typing", case_id: caseId, active: active })) {
      lastTypingSent = active ? Date.now() : 0;
    }
  }

  if (form && textarea) {
    form.addEventListener("submit", function (event) {
      var body = textarea.value.trim();
      // Before the first connection, and for an empty line, the form posts as without script.
      if (!everFollowed || !body) {
        return;
      }
      event.preventDefault();
      var ref = newRef();
      var direction = viewerKind === "citizen" ? "inbound" : "outbound";
      var node = messageNode({ direction: direction, channel: "webchat", author_name: texts.you, body: body }, texts.sending);
      node.setAttribute("data-pending", "");
      pending[ref] = { body: body, node: node };
      pendingOrder.push(ref);
      var list = threadList();
      if (list) {
        list.appendChild(node);
      }
      textarea.value = "";
      sendTyping(false);
      sendLine(ref);
    });
    textarea.addEventListener("input", function () {
      if (textarea.value.trim() && Date.now() - lastTypingSent >= TYPING_EVERY_MS) {
        sendTyping(true);
      }
    });
  }

  // --- the connection ------------------------------------------------------------------------

  function lost() {
    following = false;
    root.setAttribute("data-state", "lost");
    online = {};
    leftName = null;
    Object.keys(typing).forEach(stopTyping);
    renderPresence();
    pendingOrder.forEach(function (ref) { setStatus(pending[ref].node, texts.not_sent); });
  }

  function stop(text) {
    stopped = true;
    drop();
    root.setAttribute("data-state", "stopped");
    show(connectionLine, text);
  }

  function drop() {
    var old = socket;
    socket = null;
    lost();
    if (old) {
      try {
        old.close(1000);
      } catch (ignored) {
        // already closing
      }
    }
  }

  function retry(delay) {
    if (stopped || reconnectTimer) {
      return;
    }
    show(connectionLine, texts.reconnecting);
    var wait = delay;
    if (wait === undefined) {
      wait = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
    }
    attempts += 1;
    reconnectTimer = setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, wait);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "ready":
        me = frame.viewer || null;
        socket.send(JSON.stringify({ type: "follow", case_id: caseId, after: position }));
        break;
      case "followed":
        following = true;
        everFollowed = true;
        root.setAttribute("data-state", "following");
        attempts = 0;
        show(connectionLine, "");
        if (frame.citizen_online) {
          markOnline({ kind: "citizen", name: texts.fallback });
        }
        pendingOrder.forEach(sendLine);
        if (!statusChecked) {
          statusChecked = true;
          // The page's status was read before its thread: catch up on what came between.
          if (!isNaN(trackerSeq) && trackerSeq < position) {
            refreshStatus();
          }
        }
        break;
      case "event":
        onEvent(frame);
        break;
      case "ack":
        onAck(frame);
        break;
      case "error":
        if (frame.ref) {
          onRefused(frame);
        } else if (frame.code === "not_found") {
          stop("");
        }
        break;
      case "reload":
        // The log cannot be resumed from here: the page reads it afresh.
        location.reload();
        break;
      case "unfollowed":
        if (frame.reason === "forbidden") {
          stop("");
        }
        break;
      case "typing":
        onTyping(frame);
        break;
      case "presence":
        onPresence(frame);
        break;
      case "read":
        markOnline(frame.who);
        break;
      default:
        break;
    }
  }

  function onClose(code) {
    lost();
    if (code === 4403) {
      stop(texts.ended);
    } else if (code === 1012) {
      retry(Math.random() * 1000); // the server restarts: come back at once, a little apart
    } else if (code === 1008) {
      retry(15000 + Math.random() * 5000); // over the rate limit: pause
    } else {
      retry();
    }
  }

  function open(ticket) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/api/live", [
      ticket.subprotocol,
      "hub.ticket." + ticket.ticket,
    ]);
    socket = ws;
    ws.onmessage = function (message) {
      if (socket !== ws) {
        return;
      }
      var frame;
      try {
        frame = JSON.parse(message.data);
      } catch (ignored) {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = function (closing) {
      if (socket !== ws) {
        return; // dropped on purpose (offline): already handled
      }
      socket = null;
      onClose(closing.code);
    };
  }

  function connect() {
    if (stopped || socket) {
      return;
    }
    var body = new URLSearchParams();
    body.set("csrf_token", csrfField ? csrfField.value : "");
    fetch("/live/ticket", { method: "POST", credentials: "same-origin", body: body })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          stop(texts.ended);
          return null;
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (ticket) {
        if (ticket && !stopped && !socket) {
          open(ticket);
        }
      })
      .catch(function () {
        retry();
      });
  }

  // A browser that goes offline keeps a dead socket for a long time: drop it at once and come
  // back when the network does, resuming from the last event seen.
  window.addEventListener("offline", function () {
    if (stopped) {
      return;
    }
    drop();
    retry();
  });
  window.addEventListener("online", function () {
    if (stopped) {
      return;
    }
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    attempts = 0;
    connect();
  });

  connect();
})();
