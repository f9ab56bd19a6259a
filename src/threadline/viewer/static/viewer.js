// threadline viewer: local times, older messages on scroll, live messages from
// the server's change stream, diffs on demand. No dependencies, no build step.
// Every HTML fragment inserted here was rendered and escaped by the server.
"use strict";

(function () {
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        el.title = el.getAttribute("datetime");
        el.textContent = moment.toLocaleString();
      }
    });
  }

  function parse(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    localTimes(template.content);
    return template.content;
  }

  function toLogin() {
    window.location.assign("/login?next=" + encodeURIComponent(location.pathname));
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          toLogin();
          throw new Error("signed out");
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      });
  }

  // A result that arrived apart from its call (older messages loaded on scroll,
  // or a live message) joins the call's block once both are on the page; a
  // message left with nothing else to show is hidden, as the server hides it.
  function nameResults() {
    document.querySelectorAll(".tool-result[data-call-id]").forEach(function (el) {
      var call = document.getElementById("c-" + el.getAttribute("data-call-id"));
      if (!call || el.parentNode === call) return;
      var label = el.querySelector(".tool-name");
      if (label) label.textContent = call.getAttribute("data-tool-name");
      if (call.querySelector(".tool-result")) return;
      var message = el.closest("article.msg");
      call.appendChild(el);
      if (message && !message.querySelector(".content, .tool-call, .tool-result, .usage")) {
        message.classList.add("msg-absorbed");
      }
    });
  }

  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id ? document.getElementById(id) : null;
    if (!el) return;
    if (el.tagName === "DETAILS") el.open = true;
    el.scrollIntoView({ block: "center" });
  }

  // File diffs are fetched the first time their operation is opened.
  function lazyDiffs() {
    document.querySelectorAll("details.op[data-diff]").forEach(function (op) {
      op.addEventListener("toggle", function () {
        if (!op.open || op.getAttribute("data-loaded")) return;
        op.setAttribute("data-loaded", "1");
        var slot = op.querySelector(".diff-slot");
        fetch(op.getAttribute("data-diff"), { credentials: "same-origin" })
          .then(function (response) {
            if (!response.ok) throw new Error("HTTP " + response.status);
            return response.text();
          })
          .then(function (html) {
            slot.replaceChildren(parse(html));
            var summary = op.querySelector(".op-files"); // the diff names the files again
            if (summary) summary.remove();
          })
          .catch(function () { op.removeAttribute("data-loaded"); });
      });
    });
  }

  // Parts that take longer to compute (the cost report) arrive after the page.
  function lateFragments() {
    document.querySelectorAll("[data-fragment]").forEach(function (slot) {
      fetch(slot.getAttribute("data-fragment"), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (html) { slot.replaceChildren(parse(html)); })
        .catch(function () { /* the link inside the slot still leads to it */ });
    });
  }

  function threadPage(pane) {
    var list = document.getElementById("message-list");
    var older = document.getElementById("older");
    var notice = document.getElementById("notice");
    var live = document.getElementById("live");
    var base = "/threads/" + encodeURIComponent(pane.getAttribute("data-thread-id"));
    var threadId = pane.getAttribute("data-thread-id");
    var state = {
      first: Number(pane.getAttribute("data-first-index")),
      end: Number(pane.getAttribute("data-end-index")),
      v: Number(pane.getAttribute("data-version")),
      hasMore: pane.getAttribute("data-has-more") === "true",
      loadingOlder: false,
      tailing: false,
      again: false
    };

    function say(text) {
      notice.textContent = text;
      notice.hidden = !text;
    }

    function setStats(data) {
      document.querySelectorAll("[data-stat]").forEach(function (el) {
        var key = el.getAttribute("data-stat");
        if (key === "v") el.textContent = String(data.v);
        if (key === "messages") el.textContent = String(data.message_count);
        if (key === "cost") el.textContent = data.cost;
        if (key === "activity") {
          el.setAttribute("datetime", new Date(data.last_activity).toISOString());
          localTimes(el.parentNode);
        }
      });
      var title = document.getElementById("thread-title");
      if (title) title.textContent = data.title || "(untitled)";
    }

    function showOlderState() {
      if (state.hasMore) return;
      older.replaceChildren();
      var start = document.createElement("span");
      start.className = "start";
      start.textContent = "Start of the thread";
      older.appendChild(start);
    }

    function loadOlder() {
      if (state.loadingOlder || !state.hasMore) return Promise.resolve();
      state.loadingOlder = true;
      return getJSON(base + "/messages?before=" + state.first)
        .then(function (data) {
          var height = pane.scrollHeight;
          var top = pane.scrollTop;
          var nodes = parse(data.html);
          list.insertBefore(nodes, list.firstChild);
          nameResults();
          pane.scrollTop = top + (pane.scrollHeight - height); // keep what was in view
          state.first = data.first_index;
          state.hasMore = data.has_more;
          showOlderState();
        })
        .catch(function () { say("Could not load older messages; scroll up to try again."); })
        .finally(function () { state.loadingOlder = false; });
    }

    var button = document.getElementById("load-older");
    if (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        loadOlder();
      });
    }

    function atBottom() {
      return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
    }

    function tail() {
      if (state.tailing) {
        state.again = true;
        return;
      }
      state.tailing = true;
      state.again = false;
      var follow = atBottom();
      getJSON(base + "/messages?after=" + state.end)
        .then(function (data) {
          var nodes = parse(data.html);
          if (data.reset) {
            list.replaceChildren(nodes);
            state.first = data.first_index;
            state.hasMore = data.has_more;
            say("The thread changed; showing its newest messages.");
          } else {
            list.appendChild(nodes);
          }
          nameResults();
          state.end = data.end_index;
          state.v = Math.max(state.v, data.v);
          setStats(data);
          var empty = document.getElementById("no-messages");
          if (empty && data.message_count > 0) empty.remove();
          if (follow) pane.scrollTop = pane.scrollHeight;
        })
        .catch(function () { say("Could not fetch new messages; reload the page."); })
        .finally(function () {
          state.tailing = false;
          if (state.again) tail();
        });
    }

    function follow() {
      if (!window.EventSource || pane.getAttribute("data-live") !== "true") return;
      var stream = new EventSource("/v1/changes/stream");
      stream.addEventListener("open", function () {
        live.textContent = "live";
        live.setAttribute("data-state", "on");
      });
      stream.addEventListener("change", function (event) {
        var change = JSON.parse(event.data);
        if (change.thread_id !== threadId) return;
        if (change.deleted) {
          say("This thread was deleted.");
          stream.close();
          return;
        }
        if (change.v > state.v) tail();
      });
      stream.addEventListener("error", function () {
        var closed = stream.readyState === EventSource.CLOSED;
        live.textContent = closed ? "not live (reload to retry)" : "reconnecting…";
        live.setAttribute("data-state", "off");
      });
    }

    // A link to a message further back (a search hit): page back to it, up to
    // SEEK_PAGES pages, then leave the rest to scrolling.
    var SEEK_PAGES = 20;
    function seek(hash, pages) {
      var id = decodeURIComponent(hash.slice(1));
      if (document.getElementById(id) || !state.hasMore || pages >= SEEK_PAGES) {
        if (!document.getElementById(id)) say("That message is further back: scroll up to it.");
        openTarget();
        return;
      }
      loadOlder().then(function () { seek(hash, pages + 1); });
    }

    nameResults();
    pane.scrollTop = pane.scrollHeight; // the newest message first
    if (location.hash.indexOf("#m-") === 0) {
      seek(location.hash, 0);
    } else if (location.hash) {
      openTarget();
    }
    if ("IntersectionObserver" in window) {
      new IntersectionObserver(function (entries) {
        if (entries.some(function (entry) { return entry.isIntersecting; })) loadOlder();
      }, { root: pane, rootMargin: "300px 0px 0px 0px" }).observe(older);
    }
    follow();
  }

  function listPage() {
    document.querySelectorAll("form.filters select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    lazyDiffs();
    lateFragments();
    window.addEventListener("hashchange", openTarget);
    var pane = document.getElementById("messages");
    if (pane) threadPage(pane);
    if (document.body.classList.contains("list-page")) listPage();
  });
})();
