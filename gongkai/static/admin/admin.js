// The console's only script: live delivery progress, confirmations, print. Pages work without it.
(function () {
  "use strict";

  var ITEM_STATUS = { scheduled: "定时发布", publishing: "发布中", published: "已发布", recalled: "已撤回" };

  function setText(el, text) {
    if (el && el.textContent !== String(text)) el.textContent = String(text);
  }

  var PLANNING_OPEN = { pending: true, running: true };
  var reloading = false;

  // Planning runs after the publish answered: its bar moves while the job writes deliveries;
  // once it ends, a page drawn before then reloads once to list them.
  function showPlanning(data) {
    var line = document.getElementById("planning");
    var planning = data.planning;
    if (!line || !planning) return;
    var bar = document.getElementById("planning-bar");
    if (bar) {
      bar.max = planning.total || 1;
      bar.value = planning.planned;
    }
    var text;
    if (planning.status === "pending") text = "等待规划投递（排队中）";
    else if (planning.status === "running") {
      text = "正在规划投递：已规划 " + planning.planned + " / " +
        (planning.total === null ? "?" : planning.total) + " 条";
    } else if (planning.status === "failed") text = "规划失败：" + (planning.error || "");
    else if (planning.status === "cancelled") text = "已撤回，停止规划：已规划 " + planning.planned + " 条";
    else text = "投递已全部规划：" + planning.planned + " 条";
    setText(document.getElementById("planning-text"), text);
    var drawnOpen = PLANNING_OPEN[line.getAttribute("data-planning")];
    if (drawnOpen && !PLANNING_OPEN[planning.status] && !reloading) {
      reloading = true;
      window.location.reload();
    }
  }

  function showProgress(section, data) {
    showPlanning(data);
    var bar = document.getElementById("progress-bar");
    if (bar) {
      bar.max = data.total || 1;
      bar.value = data.finished;
    }
    section.querySelectorAll("[data-count]").forEach(function (cell) {
      setText(cell, data.counts[cell.getAttribute("data-count")] || 0);
    });
    section.querySelectorAll("[data-cell]").forEach(function (cell) {
      var key = cell.getAttribute("data-cell").split(":");
      var channel = data.channels[key[0]] || {};
      setText(cell, channel[key[1]] || 0);
    });
    var delivered = data.counts.delivered || 0;
    var summary = (data.final ? "全部结束：" : "进行中：") + data.finished + " / " + data.total +
      " 条已结束（已送达 " + delivered + "）";
    setText(document.getElementById("progress-text"), summary);
    var status = document.querySelector("#item-status .badge");
    if (status && ITEM_STATUS[data.item_status]) {
      setText(status, ITEM_STATUS[data.item_status]);
      status.className = "badge i-" + data.item_status;
    }
    section.setAttribute("data-delivered", String(delivered));
  }

  var STATUS = {
    planned: "已计划", scheduled: "定时待发", queued: "排队中", sending: "发送中",
    delivered: "已送达", failed: "失败待重试", dead: "失败（已放弃）", cancelled: "已取消"
  };

  // When the stream ends, bring the per-delivery rows up to date from the JSON API (the console
  // session works there too). Only for the rows this page lists: big items page through the log.
  function refreshRows(section) {
    var url = section.getAttribute("data-deliveries");
    if (!url || !window.fetch || section.getAttribute("data-small") !== "yes") return;
    window.fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return;
        body.deliveries.forEach(function (d) {
          var cell = document.querySelector('[data-delivery-status="' + d.id + '"] .badge');
          if (cell) {
            setText(cell, STATUS[d.status] || d.status);
            cell.className = "badge s-" + d.status;
          }
          setText(document.querySelector('[data-delivery-attempts="' + d.id + '"]'), d.attempts);
          setText(document.querySelector('[data-delivery-error="' + d.id + '"]'), d.last_error || "");
        });
      })
      .catch(function () { /* the counts above are already right */ });
  }

  function follow(section) {
    if (!window.EventSource || section.getAttribute("data-final") === "yes") return;
    var source = new EventSource(section.getAttribute("data-events"));
    var onData = function (event) { showProgress(section, JSON.parse(event.data)); };
    source.addEventListener("progress", onData);
    source.addEventListener("done", function (event) {
      onData(event);
      source.close();
      section.setAttribute("data-final", "yes");
      refreshRows(section);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.querySelector("[data-events]");
    if (section) follow(section);

    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
