"""Renders deploy/grafana/ollama-guard.json to a PNG from a live Prometheus.

Grafana cannot be installed here (it is not in the package registries this
project may use), so this draws the dashboard's own panels, in its own grid,
from the result of each panel's own PromQL over Prometheus's HTTP API. Any
query that Prometheus rejects stops the render.

    python bench/dashboard_render.py PROMETHEUS_URL START END OUT.png
"""

import json
import sys
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RATE_INTERVAL = "20s"  # Grafana's $__rate_interval for a 2 s scrape
SCALE = {"s": (1000, "ms"), "percentunit": (100, "%")}


def query(prom, expr, start, end):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": 2})
    with urllib.request.urlopen(f"{prom}/api/v1/query_range?{params}") as r:
        body = json.load(r)
    if body["status"] != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    for k, v in labels.items():
        fmt = fmt.replace("{{" + k + "}}", v)
    return fmt


def main(prom, start, end, out):
    dash = json.load(open("deploy/grafana/ollama-guard.json"))
    panels = dash["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(24, rows * 0.42), dpi=80, facecolor="#111217")
    fig.suptitle(f"{dash['title']} (rendered from its PromQL; Prometheus {prom})",
                 color="white", fontsize=16, y=0.995)
    for p in panels:
        g = p["gridPos"]
        left, width = g["x"] / 24, g["w"] / 24
        top, height = g["y"] / rows, g["h"] / rows
        if p["type"] == "row":
            fig.text(left + 0.005, 1 - top - height / 2 - 0.005, p["title"], color="#ccccdc",
                     fontsize=13, weight="bold")
            continue
        ax = fig.add_axes([left + 0.03, 1 - top - height + 0.045, width - 0.045, height - 0.075])
        ax.set_facecolor("#181b1f")
        ax.set_title(p["title"], color="#ccccdc", fontsize=11, loc="left")
        ax.tick_params(colors="#8e8e8e", labelsize=8)
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        unit = p["fieldConfig"]["defaults"].get("unit", "short")
        factor, label = SCALE.get(unit, (1, unit))
        ax.set_ylabel(label, color="#8e8e8e", fontsize=8)
        drawn = 0
        for t in p["targets"]:
            expr = t["expr"].replace("$__rate_interval", RATE_INTERVAL)
            for series in query(prom, expr, start, end):
                xs = [float(ts) - start for ts, _ in series["values"]]
                ys = [float(v) * factor for _, v in series["values"]]
                ax.plot(xs, ys, linewidth=1.4, label=legend(t["legendFormat"], series["metric"]))
                drawn += 1
        if drawn:
            ax.legend(fontsize=7, loc="upper left", facecolor="#181b1f", labelcolor="#ccccdc",
                      framealpha=0.8, ncol=2)
        else:
            ax.text(0.5, 0.5, "no data", color="#8e8e8e", ha="center", transform=ax.transAxes)
        ax.set_xlabel("seconds into the run", color="#8e8e8e", fontsize=8)
    fig.savefig(out, facecolor=fig.get_facecolor())


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
