// genofed portal: the mutation and clade charts, drawn with plotly.js (served by the portal: no
// CDN) from the LAPIS query API of this site. The numbers are also written into the tables under
// the charts, for screen readers and for anyone who wants them as text.
"use strict";

const genofedCharts = (function () {
  const layout = {
    margin: { t: 10, r: 10, b: 50, l: 60 },
    font: { family: "system-ui, sans-serif", size: 14, color: "#1b1f24" },
    legend: { orientation: "h", y: -0.2 },
  };
  const config = { displayModeBar: false, responsive: true };

  async function lapis(base, path, params) {
    const url = new URL(base + path, window.location.origin);
    Object.entries(params).forEach(([name, value]) => url.searchParams.append(name, value));
    const response = await fetch(url, { credentials: "same-origin" });
    let body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = {};
    }
    if (!response.ok) {
      throw new Error(body.detail || "the query service answered " + response.status);
    }
    return body.data || [];
  }

  function fill(tableId, rows) {
    const body = document.querySelector("#" + tableId + " tbody");
    body.replaceChildren(
      ...rows.map((cells) => {
        const row = document.createElement("tr");
        cells.forEach((value, index) => {
          const cell = document.createElement("td");
          cell.textContent = value;
          if (index > 1 || (tableId === "table-country" && index > 0)) {
            cell.className = "num";
          }
          row.append(cell);
        });
        return row;
      })
    );
  }

  return { layout, config, lapis, fill };
})();

(function () {
  const section = document.getElementById("mutation-charts");
  if (!section) {
    return;
  }
  const { layout, config, fill } = genofedCharts;
  const status = document.getElementById("charts-status");
  const base = section.dataset.lapis;
  const mutation = section.dataset.mutation;
  const binning = section.dataset.binning;
  const lapis = (path, params) => genofedCharts.lapis(base, path, params);

  function byCountry(carrying, everyone) {
    const totals = new Map(everyone.map((row) => [row.country, row.count]));
    const rows = carrying.filter((row) => row.count > 0);
    rows.sort((a, b) => String(a.country).localeCompare(String(b.country)));
    Plotly.newPlot(
      "chart-country",
      [{
        type: "bar",
        x: rows.map((row) => row.country || "unknown"),
        y: rows.map((row) => row.count),
        marker: { color: "#0b4f8a" },
        name: mutation,
      }],
      { ...layout, yaxis: { title: { text: "genomes carrying" }, rangemode: "tozero" } },
      config
    );
    fill("table-country", rows.map((row) => [row.country || "unknown", row.count, totals.get(row.country) ?? ""]));
    return rows;
  }

  function overTime(rows) {
    const countries = [...new Set(rows.map((row) => row.country))].sort();
    const traces = countries.map((country) => {
      const own = rows.filter((row) => row.country === country && row.proportion !== null);
      own.sort((a, b) => a.dateFrom.localeCompare(b.dateFrom));
      return {
        type: "scatter",
        mode: "lines+markers",
        name: country || "unknown",
        x: own.map((row) => row.dateFrom),
        y: own.map((row) => row.proportion),
        customdata: own.map((row) => [row.count, row.coverage]),
        hovertemplate: "%{x}: %{y:.0%} (%{customdata[0]} of %{customdata[1]})<extra>%{fullData.name}</extra>",
      };
    });
    Plotly.newPlot(
      "chart-time",
      traces,
      { ...layout, yaxis: { title: { text: "proportion" }, tickformat: ".0%", range: [0, 1.05] } },
      config
    );
    fill(
      "table-time",
      rows
        .filter((row) => row.proportion !== null)
        .map((row) => [row.date, row.country || "unknown", row.count, row.coverage, (100 * row.proportion).toFixed(1) + " %"])
    );
  }

  async function draw() {
    if (typeof Plotly === "undefined") {
      status.textContent = "The charting library did not load: the numbers are in the tables below.";
      return;
    }
    try {
      const [time, carrying, everyone] = await Promise.all([
        lapis("/sample/mutationsOverTime", { mutations: mutation, binning: binning, groupBy: "country" }),
        lapis("/sample/aggregated", { fields: "country", variantQuery: mutation }),
        lapis("/sample/aggregated", { fields: "country" }),
      ]);
      overTime(time);
      const countries = byCountry(carrying, everyone);
      const carriers = countries.reduce((sum, row) => sum + row.count, 0);
      status.textContent = carriers + " genome" + (carriers === 1 ? "" : "s") + " carry " + mutation + ".";
      section.dataset.drawn = "true";
    } catch (error) {
      status.textContent = "No chart: " + error.message + ".";
      status.className = "flash error";
      section.dataset.drawn = "failed";
    }
  }

  draw();
})();

// The clade chart: one aggregated query (clade x month x country), the country chosen on the
// page picks the rows; each month's bars are the clades' shares of that month, stacked.
(function () {
  const section = document.getElementById("clade-charts");
  if (!section) {
    return;
  }
  const { layout, config, fill } = genofedCharts;
  const status = document.getElementById("clades-status");
  const choice = document.getElementById("clades-country");
  const labels = JSON.parse(section.dataset.cladeLabels || "{}");
  const UNASSIGNED = "unassigned";
  const shownName = (clade) => (labels[clade] ? clade + " (" + labels[clade] + ")" : clade);

  function monthly(rows, country) {
    const counts = new Map();
    rows
      .filter((row) => row.collectionMonth && (country === "" || row.country === country))
      .forEach((row) => {
        const key = row.collectionMonth + "\t" + (row.clade || UNASSIGNED);
        counts.set(key, (counts.get(key) || 0) + row.count);
      });
    const totals = new Map();
    counts.forEach((count, key) => {
      const month = key.split("\t")[0];
      totals.set(month, (totals.get(month) || 0) + count);
    });
    return [...counts]
      .map(([key, count]) => {
        const [month, clade] = key.split("\t");
        return { month, clade, count, total: totals.get(month) };
      })
      .sort((a, b) => a.month.localeCompare(b.month) || a.clade.localeCompare(b.clade));
  }

  function draw(rows) {
    const shown = monthly(rows, choice.value);
    const clades = [...new Set(shown.map((row) => row.clade))].sort();
    const traces = clades.map((clade) => {
      const own = shown.filter((row) => row.clade === clade);
      return {
        type: "bar",
        name: shownName(clade),
        x: own.map((row) => row.month),
        y: own.map((row) => row.count / row.total),
        customdata: own.map((row) => [row.count, row.total, clade]),
        hovertemplate: "%{x}: %{y:.0%} (%{customdata[0]} of %{customdata[1]})<extra>%{fullData.name}</extra>",
      };
    });
    Plotly.react(
      "chart-clades",
      traces,
      {
        ...layout,
        barmode: "stack",
        legend: { ...layout.legend, traceorder: "normal" },
        xaxis: { type: "category", categoryorder: "category ascending" },  // months: see the caption
        yaxis: { title: { text: "share of the month's genomes" }, tickformat: ".0%", range: [0, 1.02] },
      },
      config
    );
    fill(
      "table-clades",
      shown.map((row) => [row.month, shownName(row.clade), row.count, row.total, (100 * row.count / row.total).toFixed(1) + " %"])
    );
    const genomes = shown.reduce((sum, row) => sum + row.count, 0);
    const where = choice.value || "all countries";
    status.textContent = genomes + " genome" + (genomes === 1 ? "" : "s") + " dated to a month, " + where + ".";
    section.dataset.shown = choice.value || "all";
    section.dataset.drawn = "true";
  }

  async function start() {
    if (typeof Plotly === "undefined") {
      status.textContent = "The charting library did not load: no clade chart.";
      return;
    }
    try {
      const rows = await genofedCharts.lapis(section.dataset.lapis, "/sample/aggregated", {
        fields: "clade,collectionMonth,country",
      });
      const countries = [...new Set(rows.map((row) => row.country).filter(Boolean))].sort();
      countries.forEach((country) => choice.append(new Option(country, country)));
      if (countries.includes(section.dataset.country)) {
        choice.value = section.dataset.country;
      }
      choice.addEventListener("change", () => draw(rows));
      draw(rows);
    } catch (error) {
      status.textContent = "No clade chart: " + error.message + ".";
      status.className = "flash error";
      section.dataset.drawn = "failed";
    }
  }

  start();
})();
