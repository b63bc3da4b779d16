/* The daily earnings chart (Chart.js, vendored) of the creator's dashboard and of the earnings
   page. The data is {labels, paid} (one series) or {labels, datasets: [{label, data}]} (one
   series per role, stacked). The same numbers are in the table beside it, so the page reads
   without JavaScript. */
(function () {
  "use strict";
  var COLOURS = ["#5b6cff", "#16a34a", "#f59e0b", "#db2777", "#0891b2"];
  document.addEventListener("DOMContentLoaded", function () {
    var canvas = document.getElementById("earnings-chart");
    var data = document.getElementById("chart-data");
    if (!canvas || !data || !window.Chart) return;
    var chart = JSON.parse(data.textContent);
    var series = chart.datasets || [{ label: "Paid (USDC)", data: chart.paid }];
    var stacked = series.length > 1;
    canvas.hidden = false;
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: series.map(function (s, n) {
          return { label: s.label, data: s.data.map(Number), backgroundColor: COLOURS[n % COLOURS.length] };
        })
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: stacked } },
        scales: {
          x: { stacked: stacked },
          y: { stacked: stacked, beginAtZero: true, title: { display: true, text: "USDC" } }
        }
      }
    });
  });
})();
