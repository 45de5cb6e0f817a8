"""Accuracy figures of a replay's claimwatch.utilization-forecast.jsonl (the README's figures).

usage: python3 tests/support/utilization_figures.py OUT/claimwatch.utilization-forecast.jsonl [END]

The latest version of every (key, week); each measure on the service lines where it occurs (ED
visits on EMERGENCY, admissions elsewhere). With END (YYYY-MM-DD, the generated period's end),
only the weeks that end by then are compared: a generated population stops, and its last partial
weeks (still closed by records that arrive after the period) are not a forecasting problem.
"""
import collections
import datetime
import json
import sys

path = sys.argv[1]
end = None
if len(sys.argv) > 2:
    end = (datetime.date.fromisoformat(sys.argv[2]) - datetime.date(1970, 1, 1)).days
last = {}
for line in open(path):
    r = json.loads(line)
    last[(r["key"], r["week_start"])] = r
all_weeks = dict(last)
if end is not None:
    last = {k: r for k, r in last.items() if r["week_start"] + 7 <= end + 1}
keys = {k for k, _ in last}
print(f"records {sum(1 for _ in open(path))}, keys {len(keys)}, key-weeks {len(last)}")
agg = collections.defaultdict(lambda: [0, 0, 0, 0.0, 0])  # n, in80, in95, abs, actual
for r in last.values():
    for c in r["checks"]:
        # Each measure on the keys where it occurs: ED visits on EMERGENCY, admissions elsewhere.
        if (c["measure"] == "ED_VISITS") != (r["service_line"] == "EMERGENCY"):
            continue
        for k in [(c["measure"], c["horizon_weeks"]), ("ALL", c["horizon_weeks"])]:
            a = agg[k]
            a[0] += 1; a[1] += c["inside80"]; a[2] += c["inside95"]
            a[3] += abs(c["error"]); a[4] += c["actual"]
print(f"{'measure':<11}{'h':>2}{'checks':>8}{'cov80':>8}{'cov95':>8}{'WAPE':>8}{'MAE':>8}{'actual/wk':>10}")
for k in sorted(agg):
    n, i80, i95, ab, act = agg[k]
    print(f"{k[0]:<11}{k[1]:>2}{n:>8}{i80/n:>8.3f}{i95/n:>8.3f}{(ab/act if act else float('nan')):>8.3f}{ab/n:>8.3f}{act/n:>10.2f}")
# Per facility (all service lines summed): WAPE of the 1-week-ahead point forecasts.
fac = collections.defaultdict(lambda: [0.0, 0.0, 0])
for r in last.values():
    for c in r["checks"]:
        if c["horizon_weeks"] == 1:
            f = fac[(r["facility_id"], c["measure"], r["week_start"])]
            f[0] += c["forecast"]; f[1] += c["actual"]
tot = collections.defaultdict(lambda: [0.0, 0.0])
for (fid, m, w), (fc, ac, _) in fac.items():
    tot[(fid, m)][0] += abs(ac - fc); tot[(fid, m)][1] += ac
print("facility-level WAPE (1 week ahead, service lines summed):")
for k in sorted(tot):
    ab, ac = tot[k]
    if ac > 0:
        print(f"  {k[0]:<13}{k[1]:<11} WAPE {ab/ac:.3f} over {ac:.0f}")
# Baseline for context: the mean of the 13 weeks before (same keys and weeks as the h=1 checks).
base = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
for (key, w), r in last.items():
    for c in r["checks"]:
        if c["horizon_weeks"] != 1 or (c["measure"] == "ED_VISITS") != (r["service_line"] == "EMERGENCY"):
            continue
        f = "admissions" if c["measure"] == "ADMISSIONS" else "ed_visits"
        prev = [all_weeks[(key, w - 7 * i)][f] for i in range(1, 14) if (key, w - 7 * i) in all_weeks]
        b = base[c["measure"]]
        b[0] += abs(c["actual"] - sum(prev) / len(prev)); b[1] += abs(c["error"]); b[2] += c["actual"]
for m, (bab, sab, act) in sorted(base.items()):
    print(f"1-week-ahead WAPE {m}: SES {sab/act:.3f}, mean of the previous <=13 weeks {bab/act:.3f}")
