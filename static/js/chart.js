/* The creator's daily earnings chart (Chart.js, vendored). The same numbers are in the table
   beside it, so the page reads without JavaScript. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var canvas = document.getElementById("earnings-chart");
    var data = document.getElementById("chart-data");
    if (!canvas || !data || !window.Chart) return;
    var chart = JSON.parse(data.textContent);
    canvas.hidden = false;
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [{ label: "Paid (USDC)", data: chart.paid.map(Number), backgroundColor: "#5b6cff" }]
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, title: { display: true, text: "USDC" } } }
      }
    });
  });
})();
