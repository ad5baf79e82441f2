#!/usr/bin/env python3
"""The four fleetcare reports (docs/reports.md) written as DuckDB SQL and as
pandas, over the same store (Parquet under --data), the same registry
(fleetcare.db, SQLite) and the same catalogue (models/*.toml), for the
benchmark in bench/reports/run.sh. Prints the row count of each report and
the time it took; --out DIR writes each report's rows as CSV.

usage: reports.py --engine duckdb|pandas --data DIR --models DIR --as-of TIME
                  [--report due|recurring|trends|parts|all] [--out DIR]
"""

import argparse
import datetime as dt
import glob
import os
import sqlite3
import sys
import time
import tomllib

import pandas as pd

DAY_US = 86_400_000_000
METERS = {"every_engine_hours": "engine_hours", "every_pto_hours": "pto_hours",
          "every_km": "odometer_km", "every_days": "days"}
SOON = {"engine_hours": "due_soon_engine_hours", "pto_hours": "due_soon_pto_hours",
        "odometer_km": "due_soon_km", "days": "due_soon_days"}
# The [detect] defaults (config.rs).
RECURRING_MIN, RECURRING_DAYS, REPAIR_DAYS = 3, 30, 30
BATCH_MIN, BATCH_SHARE, BATCH_DAYS = 3, 0.2, 30
USAGE_DAYS, TREND_WEEKS, PARTS_WEEKS, FAILURE_DAYS = 28, 12, 12, 90
LOOKBACK_DAYS, MIN_SPAN_DAYS = 14, 7.0


def catalogue(models):
    intervals, task_parts, fault_parts = [], [], []
    for path in sorted(glob.glob(os.path.join(models, "*.toml"))):
        if os.path.basename(path) == "parts.toml":
            continue
        with open(path, "rb") as f:
            m = tomllib.load(f)
        for t in m.get("maintenance", []):
            for key, meter in METERS.items():
                if key in t:
                    every = float(t[key])
                    intervals.append((m["id"], t["task"], meter, every,
                                      float(t.get(SOON[meter], every * 0.1))))
            for p in t.get("parts", []):
                task_parts.append((m["id"], t["task"], p["part"], float(p["qty"])))
        for fl in m.get("faults", []):
            for p in fl.get("parts", []):
                fault_parts.append((m["id"], fl["spn"], fl["fmi"], p["part"], float(p["qty"])))
    return (pd.DataFrame(intervals, columns=["model", "task", "meter", "every", "soon"]),
            pd.DataFrame(task_parts, columns=["model", "task", "part", "qty"]),
            pd.DataFrame(fault_parts, columns=["model", "spn", "fmi", "part", "qty"]))


def registry(data):
    db = sqlite3.connect(os.path.join(data, "fleetcare.db"))
    vehicles = pd.read_sql("SELECT vehicle_id AS vehicle, fleet_id AS fleet, model_id AS model, "
                           "commissioned_on, depot FROM vehicles", db)
    services = pd.read_sql("SELECT vehicle_id AS vehicle, task, performed_on, engine_hours, "
                           "pto_hours, odometer_km FROM services", db)
    stock = pd.read_sql("SELECT part, depot, on_hand FROM stock", db)
    db.close()
    vehicles["commissioned_on"] = pd.to_datetime(vehicles["commissioned_on"])
    services["performed_us"] = (pd.to_datetime(services["performed_on"], utc=True)
                                .astype("datetime64[us, UTC]").astype("int64"))
    return vehicles, services, stock


class Inputs:
    def __init__(self, a):
        self.data = a.data
        self.as_of = pd.Timestamp(a.as_of).tz_convert("UTC") if pd.Timestamp(a.as_of).tzinfo \
            else pd.Timestamp(a.as_of, tz="UTC")
        self.as_of_us = self.as_of.value // 1000
        self.as_of_day = self.as_of.normalize().tz_localize(None)
        self.intervals, self.task_parts, self.fault_parts = catalogue(a.models)
        self.vehicles, self.services, self.stock = registry(a.data)
        self.vehicles = self.vehicles[self.vehicles.model.isin(self.intervals.model.unique())
                                      | self.vehicles.model.isin(self.fault_parts.model.unique())]

    def files(self, table):
        return os.path.join(self.data, table, "day=*", "*.parquet")

    def days(self, table, from_us):
        """Part files of the day partitions from `from_us` on (as the Rust
        store prunes them)."""
        first = "day=" + dt.datetime.fromtimestamp(from_us / 1e6, dt.timezone.utc).strftime("%Y-%m-%d")
        last = "day=" + self.as_of.strftime("%Y-%m-%d")
        out = []
        for d in sorted(glob.glob(os.path.join(self.data, table, "day=*"))):
            name = os.path.basename(d)
            if first <= name <= last:
                out.extend(sorted(glob.glob(os.path.join(d, "*.parquet"))))
        return out


# ---------------------------------------------------------------- DuckDB

def duck(i):
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads = 2")
    for name in ["intervals", "task_parts", "fault_parts", "vehicles", "services", "stock"]:
        con.register(name, getattr(i, name))
    return con


def ts(us):
    return f"make_timestamp({int(us)}::BIGINT)"


def duck_files(i, table, from_us):
    files = i.days(table, from_us)
    return "read_parquet([" + ",".join(f"'{f}'" for f in files) + "])" if files else None


DUE_SQL = """
WITH m AS (
  SELECT fleet, vehicle, meter, epoch_us(ts) AS t, value FROM {meters}
  WHERE ts > {from_ts} AND ts <= {as_of_ts}
), agg AS (
  SELECT fleet, vehicle, meter, max(value) AS cur,
         max(value) FILTER (WHERE t <= {ws}) AS base,
         min(value) FILTER (WHERE t > {ws}) AS first,
         min(t) FILTER (WHERE t > {ws}) AS first_t
  FROM m GROUP BY ALL
), usage AS (
  SELECT fleet, vehicle, meter, cur,
    CASE WHEN base IS NOT NULL THEN (cur - base) / {wd}
         WHEN ({as_of} - first_t) / 86400e6 >= {min_span}
           THEN (cur - first) / (({as_of} - first_t) / 86400e6) END AS per_day
  FROM agg
), last AS (
  SELECT vehicle, task, max(performed_us) AS at, arg_max(engine_hours, performed_us) AS eh,
         arg_max(pto_hours, performed_us) AS ph, arg_max(odometer_km, performed_us) AS km
  FROM services WHERE task NOT LIKE 'repair:%' AND performed_us <= {as_of} GROUP BY ALL
), iv AS (
  SELECT v.fleet, v.vehicle, v.model, i.task, i.meter, i.every, i.soon,
    CASE WHEN i.meter = 'days' THEN
      date_diff('day', DATE '{as_of_date}',
        coalesce(CAST(make_timestamp(l.at) AS DATE), CAST(v.commissioned_on AS DATE)) + CAST(i.every AS INTEGER))
    ELSE coalesce(CASE i.meter WHEN 'engine_hours' THEN l.eh WHEN 'pto_hours' THEN l.ph ELSE l.km END, 0)
         + i.every - u.cur END AS remaining,
    CASE WHEN i.meter = 'days' THEN 1.0 ELSE u.per_day END AS per_day,
    u.cur
  FROM vehicles v JOIN intervals i ON i.model = v.model
  LEFT JOIN last l ON l.vehicle = v.vehicle AND l.task = i.task
  LEFT JOIN usage u ON u.fleet = v.fleet AND u.vehicle = v.vehicle AND u.meter = i.meter
  WHERE i.meter = 'days' OR u.cur IS NOT NULL
), judged AS (
  SELECT *, CASE WHEN remaining <= 0 THEN 2 WHEN remaining <= soon THEN 1 ELSE 0 END AS rank,
    CASE WHEN per_day > 0 THEN remaining / per_day END AS fdays
  FROM iv
), decided AS (
  SELECT *, row_number() OVER (PARTITION BY vehicle, task
      ORDER BY rank DESC, fdays ASC NULLS LAST, remaining / every ASC) AS rn,
    min(fdays) OVER (PARTITION BY vehicle, task) AS first_fdays,
    min(CASE WHEN meter = 'days' THEN every WHEN per_day > 0 THEN every / per_day END)
      OVER (PARTITION BY vehicle, task) AS period
  FROM judged
)
SELECT fleet, vehicle, model, task,
  CASE rank WHEN 2 THEN 'overdue' WHEN 1 THEN 'due_soon' ELSE 'ok' END AS status, meter,
  round(remaining, 3) AS remaining, round(per_day, 3) AS usage_per_day,
  DATE '{as_of_date}' + CAST(floor(fdays) AS INTEGER) AS forecast_due_on, first_fdays, period
FROM decided WHERE rn = 1
"""


def duck_due_all(i, con):
    ws = i.as_of_us - USAGE_DAYS * DAY_US
    frm = ws - LOOKBACK_DAYS * DAY_US
    meters = duck_files(i, "meters", frm)
    if meters is None:
        return pd.DataFrame()
    sql = DUE_SQL.format(meters=meters, from_ts=ts(frm), as_of_ts=ts(i.as_of_us), ws=ws,
                         wd=float(USAGE_DAYS), as_of=i.as_of_us, min_span=MIN_SPAN_DAYS,
                         as_of_date=i.as_of_day.date())
    return con.execute(sql).df()


def duck_due(i, con):
    d = duck_due_all(i, con)
    return d[d.status != "ok"].drop(columns=["first_fdays", "period"])


def duck_starts(i, from_us):
    files = duck_files(i, "faults", from_us)
    if files is None:
        return None
    return (f"(SELECT fleet, vehicle, spn, fmi, epoch_us(ts) AS t FROM {files} "
            f"WHERE event = 'start' AND ts > {ts(from_us)} AND ts <= {ts(i.as_of_us)})")


def duck_recurring(i, con):
    rep = i.services[i.services.task.str.startswith("repair:")].copy()
    rep = rep[rep.performed_us <= i.as_of_us]
    rep[["spn", "fmi"]] = rep.task.str.split(":", expand=True)[[1, 2]].astype("int64")
    con.register("repairs", rep[["vehicle", "spn", "fmi", "performed_us"]])
    window = i.as_of_us - max(RECURRING_DAYS, BATCH_DAYS) * DAY_US
    frm = min([window] + ([int(rep.performed_us.min())] if len(rep) else []))
    starts = duck_starts(i, frm)
    if starts is None:
        return pd.DataFrame()
    rw = i.as_of_us - RECURRING_DAYS * DAY_US
    bw = i.as_of_us - BATCH_DAYS * DAY_US
    sql = f"""
    WITH s AS {starts},
    rec AS (
      SELECT 'recurring' AS kind, s.fleet, s.vehicle, v.model, spn, fmi, count(*) AS episodes,
             1 AS vehicles, min(t) AS first_seen, max(t) AS last_seen
      FROM s LEFT JOIN vehicles v ON v.fleet = s.fleet AND v.vehicle = s.vehicle
      WHERE t > {rw} GROUP BY ALL HAVING count(*) >= {RECURRING_MIN}
    ), rep AS (
      SELECT 'repeat_repair' AS kind, s.fleet, s.vehicle, v.model, s.spn, s.fmi, count(*) AS episodes,
             1 AS vehicles, min(t) AS first_seen, max(t) AS last_seen
      FROM s JOIN repairs r ON r.vehicle = s.vehicle AND r.spn = s.spn AND r.fmi = s.fmi
      LEFT JOIN vehicles v ON v.fleet = s.fleet AND v.vehicle = s.vehicle
      WHERE t > r.performed_us AND t <= r.performed_us + {REPAIR_DAYS * DAY_US}
      GROUP BY s.fleet, s.vehicle, v.model, s.spn, s.fmi, r.performed_us
    ), reg AS (SELECT model, count(*) AS registered FROM vehicles GROUP BY ALL),
    bat AS (
      SELECT 'batch_defect' AS kind, CASE WHEN count(DISTINCT s.fleet) = 1 THEN min(s.fleet) END AS fleet,
             NULL AS vehicle, v.model, spn, fmi, count(*) AS episodes,
             count(DISTINCT s.vehicle) AS vehicles, min(t) AS first_seen, max(t) AS last_seen
      FROM s JOIN vehicles v ON v.fleet = s.fleet AND v.vehicle = s.vehicle
      WHERE t > {bw} GROUP BY v.model, spn, fmi
    )
    SELECT * FROM rec UNION ALL SELECT * FROM rep UNION ALL
    SELECT b.* FROM bat b JOIN reg USING (model)
    WHERE b.vehicles >= {BATCH_MIN} AND b.vehicles >= reg.registered * {BATCH_SHARE} - 1e-9
    ORDER BY kind, fleet, vehicle, model, spn, fmi
    """
    return con.execute(sql).df()


def week0(i, weeks):
    monday = i.as_of_day - pd.Timedelta(days=i.as_of_day.weekday())
    first = monday - pd.Timedelta(weeks=weeks - 1)
    return first, first.value // 1000


def duck_trends(i, con):
    first, origin = week0(i, TREND_WEEKS)
    starts = duck_starts(i, origin - 1)
    meters = duck_files(i, "meters", origin - 7 * DAY_US - 1)
    if starts is None:
        return pd.DataFrame()
    wk = 7 * DAY_US
    sql = f"""
    WITH e AS (
      SELECT v.model, spn, fmi, (t - {origin}) // {wk} AS week, count(*) AS episodes,
             count(DISTINCT s.vehicle) AS vehicles
      FROM {starts} s JOIN vehicles v ON v.fleet = s.fleet AND v.vehicle = s.vehicle GROUP BY ALL
    ), w AS (
      SELECT fleet, vehicle, (epoch_us(ts) - {origin}) // {wk} AS week, max(value) AS high, min(value) AS low
      FROM {meters} WHERE meter = 'engine_hours' AND ts > {ts(origin - wk - 1)} AND ts <= {ts(i.as_of_us)}
      GROUP BY ALL
    ), h AS (
      SELECT v.model, w.week,
        sum(greatest(high - coalesce(lag(high) OVER (PARTITION BY w.fleet, w.vehicle ORDER BY w.week), low), 0))
          AS hours
      FROM w JOIN vehicles v ON v.fleet = w.fleet AND v.vehicle = w.vehicle GROUP BY ALL
    )
    SELECT e.model, spn, fmi, DATE '{first.date()}' + CAST(7 * e.week AS INTEGER) AS week, episodes, vehicles,
      round(CASE WHEN hours > 0 THEN episodes * 1000.0 / hours END, 3) AS per_1000_engine_hours
    FROM e LEFT JOIN h ON h.model = e.model AND h.week = e.week
    ORDER BY e.model, spn, fmi, e.week
    """
    # DuckDB does not allow a window function inside an aggregate: compute lag first.
    sql = sql.replace("""      SELECT v.model, w.week,
        sum(greatest(high - coalesce(lag(high) OVER (PARTITION BY w.fleet, w.vehicle ORDER BY w.week), low), 0))
          AS hours
      FROM w JOIN vehicles v ON v.fleet = w.fleet AND v.vehicle = w.vehicle GROUP BY ALL""",
                      """      SELECT model, week, sum(run) AS hours FROM (
        SELECT v.model, w.week, greatest(high - coalesce(lag(high) OVER (PARTITION BY w.fleet, w.vehicle
          ORDER BY w.week), low), 0) AS run
        FROM w JOIN vehicles v ON v.fleet = w.fleet AND v.vehicle = w.vehicle) WHERE week >= 0 GROUP BY ALL""")
    return con.execute(sql).df()


def duck_parts(i, con):
    due = duck_due_all(i, con)
    con.register("due", due)
    horizon = 7 * PARTS_WEEKS
    starts = duck_starts(i, i.as_of_us - FAILURE_DAYS * DAY_US)
    corrective = "SELECT NULL::VARCHAR AS part, NULL::INTEGER AS week, 0.0 AS planned, 0.0 AS corrective WHERE false"
    if starts is not None:
        corrective = f"""
        SELECT fp.part, k.week, 0.0 AS planned,
               sum(c.n / n.size / {FAILURE_DAYS} * 7 * fp.qty * n.size) AS corrective
        FROM (SELECT v.model, spn, fmi, count(*) AS n FROM {starts} s
              JOIN vehicles v ON v.fleet = s.fleet AND v.vehicle = s.vehicle GROUP BY ALL) c
        JOIN (SELECT model, count(*) AS size FROM vehicles GROUP BY ALL) n USING (model)
        JOIN fault_parts fp ON fp.model = c.model AND fp.spn = c.spn AND fp.fmi = c.fmi
        CROSS JOIN (SELECT range AS week FROM range({PARTS_WEEKS})) k
        GROUP BY ALL"""
    sql = f"""
    WITH occ AS (
      SELECT d.model, d.task, greatest(floor(d.first_fdays), 0) + k.range * coalesce(d.period, 0) AS day, k.range
      FROM due d CROSS JOIN range({horizon + 1}) k
      WHERE d.first_fdays IS NOT NULL AND (k.range = 0 OR d.period >= 1)
    ), planned AS (
      SELECT tp.part, CAST(floor(day / 7) AS INTEGER) AS week, sum(tp.qty) AS planned, 0.0 AS corrective
      FROM occ JOIN task_parts tp ON tp.model = occ.model AND tp.task = occ.task
      WHERE day < {horizon} GROUP BY ALL
    ), demand AS (
      SELECT part, week, sum(planned) AS planned, sum(corrective) AS corrective
      FROM (SELECT * FROM planned UNION ALL {corrective}) GROUP BY ALL
    ), grid AS (
      SELECT p.part, k.range AS week, coalesce(d.planned, 0) AS planned_qty,
             coalesce(d.corrective, 0) AS corrective_qty
      FROM (SELECT DISTINCT part FROM demand) p CROSS JOIN range({PARTS_WEEKS}) k
      LEFT JOIN demand d ON d.part = p.part AND d.week = k.range
    ), st AS (SELECT part, sum(on_hand) AS stock FROM stock GROUP BY ALL)
    SELECT part, DATE '{i.as_of_day.date()}' + CAST(7 * week AS INTEGER) AS week,
      round(planned_qty, 2) AS planned_qty, round(corrective_qty, 2) AS corrective_qty,
      round(planned_qty + corrective_qty, 2) AS total_qty,
      CASE WHEN (SELECT count(*) FROM stock) > 0 THEN greatest(coalesce(st.stock, 0)
        - coalesce(sum(planned_qty + corrective_qty) OVER (PARTITION BY part ORDER BY week
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0) END AS on_hand
    FROM grid LEFT JOIN st USING (part) ORDER BY part, week
    """
    out = con.execute(sql).df()
    out["shortfall"] = (out.total_qty - out.on_hand).clip(lower=0).round(2)
    return out


# ---------------------------------------------------------------- pandas

def read(files, columns, filters):
    """The columns of `files` with the `ts` bounds of `filters` applied
    (pyarrow's own filter cannot take the store's string_view columns)."""
    if not files:
        return pd.DataFrame(columns=columns)
    df = pd.read_parquet(files, columns=columns, engine="pyarrow")
    keep = pd.Series(True, index=df.index)
    for column, op, value in filters:
        keep &= (df[column] > value) if op == ">" else (df[column] <= value)
    return df[keep]


def pd_due_all(i):
    ws = i.as_of_us - USAGE_DAYS * DAY_US
    frm = ws - LOOKBACK_DAYS * DAY_US
    m = read(i.days("meters", frm), ["fleet", "vehicle", "meter", "ts", "value"],
             [("ts", ">", pd.Timestamp(frm, unit="us")), ("ts", "<=", pd.Timestamp(i.as_of_us, unit="us"))])
    m["t"] = m.ts.astype("datetime64[us]").astype("int64")
    before = m.t <= ws
    g = m.groupby(["fleet", "vehicle", "meter"])
    agg = pd.DataFrame({"cur": g.value.max()})
    agg["base"] = m[before].groupby(["fleet", "vehicle", "meter"]).value.max()
    after = m[~before].groupby(["fleet", "vehicle", "meter"])
    agg["first"] = after.value.min()
    agg["first_t"] = after.t.min()
    span = (i.as_of_us - agg.first_t) / DAY_US
    agg["per_day"] = (agg.cur - agg.base) / USAGE_DAYS
    late = agg.base.isna() & (span >= MIN_SPAN_DAYS)
    agg.loc[late, "per_day"] = (agg.cur - agg["first"])[late] / span[late]
    usage = agg.reset_index()[["fleet", "vehicle", "meter", "cur", "per_day"]]

    s = i.services[~i.services.task.str.startswith("repair:") & (i.services.performed_us <= i.as_of_us)]
    last = s.sort_values("performed_us").groupby(["vehicle", "task"]).last().reset_index()
    iv = i.vehicles.merge(i.intervals, on="model").merge(last, on=["vehicle", "task"], how="left")
    iv = iv.merge(usage, on=["fleet", "vehicle", "meter"], how="left")
    iv = iv[(iv.meter == "days") | iv.cur.notna()].copy()
    base_meter = iv.engine_hours.where(iv.meter == "engine_hours",
                                       iv.pto_hours.where(iv.meter == "pto_hours", iv.odometer_km))
    base_day = pd.to_datetime(iv.performed_us, unit="us").dt.normalize().fillna(iv.commissioned_on)
    days = iv.meter == "days"
    due_day = base_day + pd.to_timedelta(iv.every, unit="D")
    iv["remaining"] = (base_meter.fillna(0) + iv.every - iv.cur).where(
        ~days, (due_day - i.as_of_day).dt.days)
    iv.loc[days, "per_day"] = 1.0
    iv["rank"] = 0
    iv.loc[iv.remaining <= iv.soon, "rank"] = 1
    iv.loc[iv.remaining <= 0, "rank"] = 2
    iv["fdays"] = (iv.remaining / iv.per_day).where(iv.per_day > 0)
    iv["share"] = iv.remaining / iv.every
    iv["cycle"] = (iv.every / iv.per_day).where(iv.per_day > 0)
    keys = ["vehicle", "task"]
    iv["first_fdays"] = iv.groupby(keys).fdays.transform("min")
    iv["period"] = iv.groupby(keys).cycle.transform("min")
    iv = iv.sort_values(keys + ["rank", "fdays", "share"], ascending=[True, True, False, True, True],
                        na_position="last")
    d = iv.groupby(keys, sort=False).head(1).copy()
    d["status"] = d["rank"].map({0: "ok", 1: "due_soon", 2: "overdue"})
    d["forecast_due_on"] = i.as_of_day + pd.to_timedelta(d.fdays.apply(lambda x: x // 1), unit="D")
    d["remaining"] = d.remaining.round(3)
    d["usage_per_day"] = d.per_day.round(3)
    return d[["fleet", "vehicle", "model", "task", "status", "meter", "remaining", "usage_per_day",
              "forecast_due_on", "first_fdays", "period"]].sort_values(["fleet", "vehicle", "task"])


def pd_due(i):
    d = pd_due_all(i)
    return d[d.status != "ok"].drop(columns=["first_fdays", "period"])


def pd_starts(i, from_us):
    s = read(i.days("faults", from_us), ["fleet", "vehicle", "spn", "fmi", "ts", "event"],
             [("ts", ">", pd.Timestamp(from_us, unit="us")),
              ("ts", "<=", pd.Timestamp(i.as_of_us, unit="us"))])
    s = s[s.event == "start"].copy()
    s["t"] = s.ts.astype("datetime64[us]").astype("int64")
    return s.drop(columns=["ts", "event"])


def pd_recurring(i):
    rep = i.services[i.services.task.str.startswith("repair:") & (i.services.performed_us <= i.as_of_us)].copy()
    rep[["spn", "fmi"]] = rep.task.str.split(":", expand=True)[[1, 2]].astype("int64")
    window = i.as_of_us - max(RECURRING_DAYS, BATCH_DAYS) * DAY_US
    frm = min([window] + ([int(rep.performed_us.min())] if len(rep) else []))
    s = pd_starts(i, frm)
    s = s.merge(i.vehicles[["fleet", "vehicle", "model"]], on=["fleet", "vehicle"], how="left")
    agg = {"episodes": ("t", "size"), "first_seen": ("t", "min"), "last_seen": ("t", "max")}
    keys = ["fleet", "vehicle", "spn", "fmi"]
    rec = s[s.t > i.as_of_us - RECURRING_DAYS * DAY_US].groupby(keys, dropna=False).agg(
        model=("model", "first"), **agg).reset_index()
    rec = rec[rec.episodes >= RECURRING_MIN].assign(kind="recurring", vehicles=1)
    j = s.merge(rep[["vehicle", "spn", "fmi", "performed_us"]], on=["vehicle", "spn", "fmi"])
    j = j[(j.t > j.performed_us) & (j.t <= j.performed_us + REPAIR_DAYS * DAY_US)]
    rr = j.groupby(keys + ["performed_us"], dropna=False).agg(model=("model", "first"), **agg)
    rr = rr.reset_index().drop(columns="performed_us").assign(kind="repeat_repair", vehicles=1)
    b = s[(s.t > i.as_of_us - BATCH_DAYS * DAY_US) & s.model.notna()]
    bat = b.groupby(["model", "spn", "fmi"]).agg(vehicles=("vehicle", "nunique"),
                                                  fleets=("fleet", "nunique"), fleet=("fleet", "first"),
                                                  **agg).reset_index()
    size = i.vehicles.groupby("model").size().rename("registered")
    bat = bat.join(size, on="model")
    bat = bat[(bat.vehicles >= BATCH_MIN) & (bat.vehicles >= bat.registered * BATCH_SHARE - 1e-9)]
    bat = bat.assign(kind="batch_defect", vehicle=None, fleet=bat.fleet.where(bat.fleets == 1))
    cols = ["kind", "fleet", "vehicle", "model", "spn", "fmi", "episodes", "vehicles", "first_seen", "last_seen"]
    return pd.concat([rec[cols], rr[cols], bat[cols]], ignore_index=True)


def pd_trends(i):
    first, origin = week0(i, TREND_WEEKS)
    wk = 7 * DAY_US
    s = pd_starts(i, origin - 1).merge(i.vehicles[["fleet", "vehicle", "model"]], on=["fleet", "vehicle"])
    s["week"] = (s.t - origin) // wk
    e = s.groupby(["model", "spn", "fmi", "week"]).agg(episodes=("t", "size"),
                                                       vehicles=("vehicle", "nunique")).reset_index()
    m = read(i.days("meters", origin - wk - 1), ["fleet", "vehicle", "meter", "ts", "value"],
             [("ts", ">", pd.Timestamp(origin - wk - 1, unit="us")),
              ("ts", "<=", pd.Timestamp(i.as_of_us, unit="us"))])
    m = m[m.meter == "engine_hours"].copy()
    m["week"] = (m.ts.astype("datetime64[us]").astype("int64") - origin) // wk
    w = m.groupby(["fleet", "vehicle", "week"]).value.agg(["max", "min"]).reset_index()
    w = w.sort_values(["fleet", "vehicle", "week"])
    prev = w.groupby(["fleet", "vehicle"])["max"].shift()
    w["run"] = (w["max"] - prev.fillna(w["min"])).clip(lower=0)
    w = w[w.week >= 0].merge(i.vehicles[["fleet", "vehicle", "model"]], on=["fleet", "vehicle"])
    h = w.groupby(["model", "week"]).run.sum().rename("hours").reset_index()
    e = e.merge(h, on=["model", "week"], how="left")
    e["per_1000_engine_hours"] = (e.episodes * 1000 / e.hours).where(e.hours > 0).round(3)
    e["week"] = first + pd.to_timedelta(7 * e.week, unit="D")
    return e.drop(columns="hours").sort_values(["model", "spn", "fmi", "week"])


def pd_parts(i):
    d = pd_due_all(i)
    horizon = 7 * PARTS_WEEKS
    d = d[d.first_fdays.notna()]
    rows = []
    for model, task, f, p in zip(d.model, d.task, d.first_fdays, d.period):
        day = max(f // 1, 0)
        while day < horizon:
            rows.append((model, task, int(day // 7)))
            if not (p >= 1):
                break
            day += p
    occ = pd.DataFrame(rows, columns=["model", "task", "week"])
    planned = occ.merge(i.task_parts, on=["model", "task"]).groupby(["part", "week"]).qty.sum()
    s = pd_starts(i, i.as_of_us - FAILURE_DAYS * DAY_US).merge(
        i.vehicles[["fleet", "vehicle", "model"]], on=["fleet", "vehicle"])
    c = s.groupby(["model", "spn", "fmi"]).size().rename("n").reset_index()
    c = c.merge(i.fault_parts, on=["model", "spn", "fmi"])
    c["per_week"] = c.n / FAILURE_DAYS * 7 * c.qty
    per_week = c.groupby("part").per_week.sum()
    parts = sorted(set(planned.index.get_level_values(0)) | set(per_week.index))
    grid = pd.MultiIndex.from_product([parts, range(PARTS_WEEKS)], names=["part", "week"])
    out = pd.DataFrame(index=grid).reset_index()
    out["planned_qty"] = planned.reindex(grid).fillna(0).values
    out["corrective_qty"] = out.part.map(per_week).fillna(0)
    out["total_qty"] = out.planned_qty + out.corrective_qty
    if len(i.stock):
        stock = out.part.map(i.stock.groupby("part").on_hand.sum()).fillna(0)
        before = out.groupby("part").total_qty.cumsum() - out.total_qty
        out["on_hand"] = (stock - before).clip(lower=0)
        out["shortfall"] = (out.total_qty - out.on_hand).clip(lower=0)
    else:
        out["on_hand"] = out["shortfall"] = None
    out["week"] = i.as_of_day + pd.to_timedelta(7 * out.week, unit="D")
    return out.round({"planned_qty": 2, "corrective_qty": 2, "total_qty": 2})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["duckdb", "pandas"], required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--report", default="all")
    ap.add_argument("--out")
    a = ap.parse_args()
    started = time.perf_counter()
    i = Inputs(a)
    loaded = time.perf_counter() - started
    con = duck(i) if a.engine == "duckdb" else None
    jobs = {
        "due": (lambda: duck_due(i, con)) if con else (lambda: pd_due(i)),
        "recurring": (lambda: duck_recurring(i, con)) if con else (lambda: pd_recurring(i)),
        "trends": (lambda: duck_trends(i, con)) if con else (lambda: pd_trends(i)),
        "parts": (lambda: duck_parts(i, con)) if con else (lambda: pd_parts(i)),
    }
    names = list(jobs) if a.report == "all" else [a.report]
    print(f"{a.engine}: inputs {loaded:.2f} s", file=sys.stderr)
    for name in names:
        t = time.perf_counter()
        rows = jobs[name]()
        print(f"{a.engine} {name}: {len(rows)} rows in {time.perf_counter() - t:.2f} s", file=sys.stderr)
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            rows.to_csv(os.path.join(a.out, f"{name}.csv"), index=False)
    print(f"{a.engine} total: {time.perf_counter() - started:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
