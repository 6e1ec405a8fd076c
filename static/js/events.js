/*
 * Confirma live events: one WebSocket to /ws/events/ per page.
 *
 * Connects, reconnects with exponential back-off and jitter, resumes from the last id it
 * saw (?since=), drops duplicates by id, dispatches one DOM event per frame
 * ("confirma:event" and "confirma:<type>" on document, detail = the frame) and keeps a
 * visible connected / reconnecting indicator (#events-status).
 *
 * Pages start it with <body data-events="on" data-events-since="<id>"
 * [data-events-token="<signed token>"]> or by calling Confirma.events.start({...}).
 * A "resync" frame reloads the page unless a listener calls preventDefault().
 * A "live" frame with state "degraded" (the server cannot push: its Redis is away; it still
 * sends what the event log holds, later than usual) shows "reconnecting" on an open socket,
 * until the server sends state "ok".
 */
(function () {
  "use strict";

  var BASE_DELAY_MS = 500;
  var MAX_DELAY_MS = 10000;
  var WATCHDOG_MS = 70000;
  var MEMORY = 5000;
  var RESUME_LOOKBACK = 200;
  var FATAL_CLOSE_CODES = { 4400: true, 4401: true };

  function EventStream(options) {
    this.token = options.token || "";
    this.lastId = options.since ? parseInt(options.since, 10) || 0 : null;
    this.startId = this.lastId;  // where this page began listening
    this.path = options.path || "/ws/events/";
    this.indicator = options.indicator || document.getElementById("events-status");
    this.seen = new Set();
    this.seenOrder = [];
    this.receivedIds = [];
    this.attempt = 0;
    this.socket = null;
    this.state = "idle";
    this.stopped = false;
    this.watchdog = null;
  }

  EventStream.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var params = new URLSearchParams();
    if (this.lastId !== null) {
      params.set("since", String(this.lastId));
      // Ids just below `since` may still commit late; say where we began and which of
      // the recent ones we already have.
      if (this.startId !== null && this.startId < this.lastId) {
        var floor = Math.max(this.startId, this.lastId - RESUME_LOOKBACK);
        var recent = this.seenOrder.filter(function (id) { return id > floor; }).slice(-500);
        params.set("from", String(this.startId));
        params.set("seen", recent.join(","));
      }
    }
    if (this.token) params.set("token", this.token);
    var query = params.toString();
    return scheme + window.location.host + this.path + (query ? "?" + query : "");
  };

  EventStream.prototype.setState = function (state) {
    this.state = state;
    var el = this.indicator;
    if (!el) return;
    el.dataset.state = state;
    el.textContent = el.dataset["label" + state.charAt(0).toUpperCase() + state.slice(1)] || state;
    el.title = el.textContent; // the pill is narrow: a long word shows whole on hover
    document.dispatchEvent(new CustomEvent("confirma:connection", { detail: { state: state } }));
  };

  EventStream.prototype.connect = function () {
    if (this.stopped) return;
    var self = this;
    this.setState(this.attempt === 0 && this.lastId === null ? "connecting" : (this.attempt ? "reconnecting" : "connecting"));
    var socket;
    try {
      socket = new WebSocket(this.url());
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = function () {
      self.attempt = 0;
      self.setState("connected");
      self.armWatchdog();
    };
    socket.onmessage = function (message) {
      self.armWatchdog();
      var frame;
      try { frame = JSON.parse(message.data); } catch (err) { return; }
      self.handle(frame);
    };
    socket.onclose = function (event) {
      self.socket = null;
      clearTimeout(self.watchdog);
      if (FATAL_CLOSE_CODES[event.code]) {
        self.setState("offline");
        return;
      }
      self.scheduleReconnect();
    };
  };

  EventStream.prototype.armWatchdog = function () {
    var self = this;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(function () {
      if (self.socket) self.socket.close();
    }, WATCHDOG_MS);
  };

  EventStream.prototype.scheduleReconnect = function () {
    if (this.stopped) return;
    this.setState("reconnecting");
    var ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * Math.pow(2, this.attempt));
    var delay = BASE_DELAY_MS / 2 + Math.random() * ceiling;  // full jitter, with a floor
    this.attempt += 1;
    var self = this;
    setTimeout(function () { self.connect(); }, delay);
  };

  EventStream.prototype.remember = function (id) {
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > MEMORY) this.seen.delete(this.seenOrder.shift());
  };

  EventStream.prototype.handle = function (frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "heartbeat" || frame.type === "pong") return;
    if (frame.type === "live") {
      this.setState(frame.state === "ok" ? "connected" : "reconnecting");
      return;
    }
    if (frame.type === "resync") {
      var resync = new CustomEvent("confirma:resync", { detail: frame, cancelable: true });
      if (document.dispatchEvent(resync)) window.location.reload();
      return;
    }
    if (typeof frame.id !== "number") return;
    if (this.seen.has(frame.id)) return;
    this.remember(frame.id);
    this.receivedIds.push(frame.id);
    if (this.lastId === null || frame.id > this.lastId) this.lastId = frame.id;
    document.dispatchEvent(new CustomEvent("confirma:event", { detail: frame }));
    document.dispatchEvent(new CustomEvent("confirma:" + frame.type, { detail: frame }));
  };

  EventStream.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.watchdog);
    if (this.socket) this.socket.close();
    this.setState("offline");
  };

  EventStream.prototype.resume = function () {
    this.stopped = false;
    this.attempt = 0;
    if (!this.socket) this.connect();
  };

  var Confirma = (window.Confirma = window.Confirma || {});
  Confirma.EventStream = EventStream;
  Confirma.startEvents = function (options) {
    if (Confirma.events) return Confirma.events;
    Confirma.events = new EventStream(options || {});
    Confirma.events.connect();
    return Confirma.events;
  };

  function autoStart() {
    var body = document.body;
    if (!body || body.dataset.events !== "on") return;
    Confirma.startEvents({ since: body.dataset.eventsSince, token: body.dataset.eventsToken });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", autoStart);
  } else {
    autoStart();
  }
})();
