//! One test per validation rule, on small catalogues written to a temporary
//! directory, and a check of the shipped `models/`.

use std::path::{Path, PathBuf};

use fleetcare_ingest::j1939::{Fmi, Spn};
use fleetcare_ingest::modbus::RegisterMapError;
use tempfile::TempDir;

use super::*;

const PARTS: &str = r#"
[[part]]
id = "FLT-OIL-01"
name = "Engine oil filter"
name_zh = "机油滤清器"
unit = "pcs"
lead_time_days = 3

[[part]]
id = "OIL-15W40-L"
name = "Engine oil 15W-40"
unit = "L"
lead_time_days = 2
"#;

/// A valid model with one task; tests append tables to it.
const MODEL: &str = r#"id = "m1"
name = "Model one"
name_zh = "一号车型"
kind = "sweeper"

[[maintenance]]
task = "engine-oil"
name = "Engine oil and filter"
every_engine_hours = 500
parts = [{ part = "FLT-OIL-01", qty = 1 }]
"#;

struct Dir {
    dir: TempDir,
}

impl Dir {
    fn new(parts: &str, models: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PARTS_FILE), parts).unwrap();
        for (file, text) in models {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        Self { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn load(&self) -> Result<Catalog> {
        Catalog::load(self.dir.path())
    }
}

/// The 1-based line of the `nth` (from 1) occurrence of `needle`.
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    let (offset, _) = text.match_indices(needle).nth(nth - 1).unwrap();
    text[..offset].matches('\n').count() + 1
}

/// Loads `MODEL` + `extra` as m1.toml and returns the line and problem of
/// the refusal, checking that the message names the file.
fn refusal(extra: &str) -> (usize, Problem, String) {
    let text = format!("{MODEL}{extra}");
    let dir = Dir::new(PARTS, &[("m1.toml", &text)]);
    let err = dir.load().unwrap_err();
    let at = err.location().unwrap().clone();
    assert_eq!(at.path, dir.path("m1.toml"));
    let message = err.to_string();
    assert!(message.starts_with(&format!("{}:", dir.path("m1.toml").display())));
    (at.line.unwrap(), err.problem().unwrap().clone(), message)
}

fn model_with(extra: &str) -> String {
    format!("{MODEL}{extra}")
}

#[test]
fn loads_a_valid_catalogue() {
    let text = model_with(
        r#"
[[maintenance]]
task = "brakes"
name = "Brake inspection"
name_zh = "制动检查"
every_km = 10000.5
every_days = 90
due_soon_days = 7

[[faults]]
spn = 110
fmi = 0
name = "Coolant temperature high"
severity = "critical"
parts = [{ part = "OIL-15W40-L", qty = 2.5 }]

[modbus]
unit = 1
registers = [
  { name = "pto_hours", kind = "input", address = 30, type = "u32", word_order = "high_first", scale = 0.1 },
]
"#,
    );
    let dir = Dir::new(PARTS, &[("m1.toml", &text)]);
    let catalog = dir.load().unwrap();

    let model = catalog.model("m1").unwrap();
    assert_eq!(model.kind, TruckKind::Sweeper);
    assert_eq!(model.name_zh.as_deref(), Some("一号车型"));
    assert_eq!(catalog.model(&ModelId::new("m1").unwrap()), Some(model));
    assert!(catalog.model("m2").is_none());

    let oil = model.task("engine-oil").unwrap();
    assert_eq!(oil.name_zh, None);
    assert_eq!(
        oil.intervals,
        [Interval {
            meter: IntervalMeter::EngineHours,
            every: 500.0,
            due_soon: 50.0
        }]
    );
    assert_eq!(
        oil.parts,
        [PartQty {
            part: PartId::new("FLT-OIL-01").unwrap(),
            qty: 1.0
        }]
    );
    let brakes = model.task(&TaskId::new("brakes").unwrap()).unwrap();
    let km = brakes.interval(IntervalMeter::OdometerKm).unwrap();
    assert_eq!((km.every, km.due_soon), (10_000.5, 1_000.05));
    let days = brakes.interval(IntervalMeter::Days).unwrap();
    assert_eq!((days.every, days.due_soon), (90.0, 7.0));
    assert!(brakes.interval(IntervalMeter::EngineHours).is_none());

    let spn = Spn::new(110).unwrap();
    let fault = catalog.fault("m1", spn, Fmi::new(0).unwrap()).unwrap();
    assert_eq!(fault.severity, Severity::Critical);
    assert_eq!(fault.parts[0].qty, 2.5);
    assert!(catalog.fault("m1", spn, Fmi::new(1).unwrap()).is_none());
    assert!(catalog.fault("m2", spn, Fmi::new(0).unwrap()).is_none());

    let part = catalog.part("FLT-OIL-01").unwrap();
    assert_eq!((part.unit.as_str(), part.lead_time_days), ("pcs", 3));
    assert_eq!(part.name_zh.as_deref(), Some("机油滤清器"));
    assert_eq!(catalog.parts().count(), 2);

    let modbus = model.modbus.as_ref().unwrap();
    assert_eq!(modbus.register("pto_hours").unwrap().address, 30);
}

#[test]
fn error_message_reads_file_line_reason() {
    let extra = "\n[[maintenance]]\ntask = \"greasing\"\nname = \"Greasing\"\n";
    let (line, problem, message) = refusal(extra);
    assert_eq!(line, line_of(&model_with(extra), "task = \"greasing\"", 1));
    assert_eq!(
        problem,
        Problem::NoInterval {
            task: "greasing".to_owned()
        }
    );
    assert!(message.ends_with(&format!(
        ":{line}: task \"greasing\" has no interval; give it every_engine_hours, every_pto_hours, every_km or every_days"
    )));
}

#[test]
fn duplicate_model_id_names_both_files() {
    let dir = Dir::new(PARTS, &[("a.toml", MODEL), ("b.toml", MODEL)]);
    let err = dir.load().unwrap_err();
    assert_eq!(
        err.location(),
        Some(&Location {
            path: dir.path("b.toml"),
            line: Some(1)
        })
    );
    assert_eq!(
        err.problem(),
        Some(&Problem::DuplicateModel {
            id: "m1".to_owned(),
            first: dir.path("a.toml")
        })
    );
}

#[test]
fn duplicate_task_id() {
    let extra = "\n[[maintenance]]\ntask = \"engine-oil\"\nname = \"Again\"\nevery_days = 30\n";
    let (line, problem, _) = refusal(extra);
    assert_eq!(
        line,
        line_of(&model_with(extra), "task = \"engine-oil\"", 2)
    );
    assert_eq!(
        problem,
        Problem::DuplicateTask {
            task: "engine-oil".to_owned(),
            first_line: line_of(MODEL, "task = \"engine-oil\"", 1)
        }
    );
}

fn task_with(keys: &str) -> String {
    format!("\n[[maintenance]]\ntask = \"t\"\nname = \"T\"\n{keys}\n")
}

#[test]
fn non_positive_intervals() {
    for (keys, key) in [
        ("every_km = 0", "every_km"),
        ("every_engine_hours = -5", "every_engine_hours"),
        ("every_pto_hours = nan", "every_pto_hours"),
        ("every_days = inf", "every_days"),
    ] {
        let extra = task_with(keys);
        let (line, problem, _) = refusal(&extra);
        assert_eq!(line, line_of(&model_with(&extra), keys, 1), "{keys}");
        assert!(
            matches!(problem, Problem::NonPositiveInterval { key: k, .. } if k == key),
            "{keys}: {problem:?}"
        );
    }
}

#[test]
fn duty_loads_and_is_checked_with_its_line() {
    let text = model_with(&task_with(
        "every_pto_hours = 2000\nduty = { signal = \"hydraulic_oil_temp_c\", above = 80, factor = 2.0 }",
    ));
    let dir = Dir::new(PARTS, &[("m1.toml", &text)]);
    let catalog = dir.load().unwrap();
    let model = catalog.models().next().unwrap();
    assert_eq!(
        model.task("t").unwrap().duty,
        Some(Duty {
            signal: "hydraulic_oil_temp_c".into(),
            above: 80.0,
            factor: 2.0,
        })
    );
    let plain = model_with(&task_with("every_pto_hours = 2000"));
    let dir = Dir::new(PARTS, &[("m1.toml", &plain)]);
    assert_eq!(
        dir.load()
            .unwrap()
            .models()
            .next()
            .unwrap()
            .task("t")
            .unwrap()
            .duty,
        None
    );

    type Check = fn(&Problem) -> bool;
    let cases: [(&str, Check); 5] = [
        ("signal = \"\", above = 80, factor = 2", |p| {
            matches!(p, Problem::BadDutySignal { .. })
        }),
        ("signal = \"Hyd Temp\", above = 80, factor = 2", |p| {
            matches!(p, Problem::BadDutySignal { .. })
        }),
        (
            "signal = \"oil_temp_c\", above = 80, factor = 0.5",
            |p| matches!(p, Problem::BadDutyFactor { value, .. } if *value == 0.5),
        ),
        ("signal = \"oil_temp_c\", above = 80, factor = nan", |p| {
            matches!(p, Problem::BadDutyFactor { .. })
        }),
        ("signal = \"oil_temp_c\", above = inf, factor = 2", |p| {
            matches!(p, Problem::BadDutyLevel { .. })
        }),
    ];
    for (inner, check) in cases {
        let extra = task_with(&format!("every_engine_hours = 500\nduty = {{ {inner} }}"));
        let (line, problem, message) = refusal(&extra);
        assert_eq!(line, line_of(&model_with(&extra), "duty =", 1), "{inner}");
        assert!(check(&problem), "{inner}: {problem:?}");
        assert!(message.contains("task \"t\""), "{message}");
    }
    // Unknown keys and missing ones are refused too.
    let (_, problem, _) = refusal(&task_with(
        "every_engine_hours = 500\nduty = { signal = \"oil_temp_c\", above = 80 }",
    ));
    assert!(matches!(problem, Problem::Toml { .. }), "{problem:?}");
}

#[test]
fn days_are_whole() {
    let extra = task_with("every_days = 30.5");
    let (_, problem, _) = refusal(&extra);
    assert!(matches!(
        problem,
        Problem::FractionalDays {
            key: "every_days",
            ..
        }
    ));
    let extra = task_with("every_days = 30\ndue_soon_days = 2.5");
    let (_, problem, _) = refusal(&extra);
    assert!(matches!(
        problem,
        Problem::FractionalDays {
            key: "due_soon_days",
            ..
        }
    ));
}

#[test]
fn due_soon_must_be_below_its_interval() {
    for window in ["500", "600"] {
        let keys = format!("every_engine_hours = 500\ndue_soon_engine_hours = {window}");
        let extra = task_with(&keys);
        let (line, problem, _) = refusal(&extra);
        assert_eq!(
            line,
            line_of(&model_with(&extra), "due_soon_engine_hours", 1)
        );
        assert!(matches!(
            problem,
            Problem::DueSoonNotBelowInterval {
                key: "due_soon_engine_hours",
                interval_key: "every_engine_hours",
                ..
            }
        ));
    }
}

#[test]
fn due_soon_needs_its_interval() {
    let extra = task_with("every_engine_hours = 500\ndue_soon_km = 100");
    let (line, problem, message) = refusal(&extra);
    assert_eq!(line, line_of(&model_with(&extra), "due_soon_km", 1));
    assert_eq!(
        problem,
        Problem::DueSoonWithoutInterval {
            task: "t".to_owned(),
            key: "due_soon_km",
            interval_key: "every_km"
        }
    );
    assert!(message.contains("has due_soon_km but no every_km"));
}

#[test]
fn due_soon_may_be_zero_but_not_negative() {
    let text = model_with(&task_with("every_days = 30\ndue_soon_days = 0"));
    let catalog = Dir::new(PARTS, &[("m1.toml", &text)]).load().unwrap();
    let task = catalog.model("m1").unwrap().task("t").unwrap();
    assert_eq!(task.interval(IntervalMeter::Days).unwrap().due_soon, 0.0);

    let (_, problem, _) = refusal(&task_with("every_days = 30\ndue_soon_days = -1"));
    assert!(matches!(problem, Problem::NegativeDueSoon { .. }));
}

fn fault_with(spn: &str, fmi: &str, more: &str) -> String {
    format!("\n[[faults]]\nspn = {spn}\nfmi = {fmi}\nname = \"F\"\nseverity = \"high\"\n{more}\n")
}

#[test]
fn duplicate_spn_fmi() {
    let extra = format!(
        "{}{}",
        fault_with("110", "0", ""),
        fault_with("110", "0", "")
    );
    let (line, problem, _) = refusal(&extra);
    let text = model_with(&extra);
    assert_eq!(line, line_of(&text, "spn = 110", 2));
    assert_eq!(
        problem,
        Problem::DuplicateFault {
            spn: 110,
            fmi: 0,
            first_line: line_of(&text, "spn = 110", 1)
        }
    );
    // The same SPN with another FMI is another fault.
    let ok = format!(
        "{}{}",
        fault_with("110", "0", ""),
        fault_with("110", "16", "")
    );
    assert!(
        Dir::new(PARTS, &[("m1.toml", &model_with(&ok))])
            .load()
            .is_ok()
    );
}

#[test]
fn spn_and_fmi_ranges() {
    let extra = fault_with("524288", "0", "");
    let (line, problem, _) = refusal(&extra);
    assert_eq!(line, line_of(&model_with(&extra), "spn = 524288", 1));
    assert_eq!(problem, Problem::SpnOutOfRange { spn: 524_288 });
    let (_, problem, _) = refusal(&fault_with("-1", "0", ""));
    assert_eq!(problem, Problem::SpnOutOfRange { spn: -1 });
    let extra = fault_with("110", "32", "");
    let (line, problem, message) = refusal(&extra);
    assert_eq!(line, line_of(&model_with(&extra), "fmi = 32", 1));
    assert_eq!(problem, Problem::FmiOutOfRange { fmi: 32 });
    assert!(message.ends_with("FMI 32 is out of range; FMIs are 0 to 31"));
    // The top of the proprietary range is a valid SPN.
    let ok = model_with(&fault_with("524287", "31", ""));
    assert!(Dir::new(PARTS, &[("m1.toml", &ok)]).load().is_ok());
}

#[test]
fn unknown_part() {
    let extra = fault_with("110", "0", "parts = [{ part = \"NOPE-1\", qty = 1 }]");
    let (line, problem, message) = refusal(&extra);
    assert_eq!(line, line_of(&model_with(&extra), "NOPE-1", 1));
    assert_eq!(
        problem,
        Problem::UnknownPart {
            part: "NOPE-1".to_owned()
        }
    );
    assert!(message.contains("part \"NOPE-1\" is not in parts.toml"));
    let extra = task_with("every_days = 30\nparts = [{ part = \"NOPE-2\", qty = 1 }]");
    let (_, problem, _) = refusal(&extra);
    assert!(matches!(problem, Problem::UnknownPart { .. }));
}

#[test]
fn non_positive_qty() {
    for qty in ["0", "-1", "nan"] {
        let extra = task_with(&format!(
            "every_days = 30\nparts = [{{ part = \"FLT-OIL-01\", qty = {qty} }}]"
        ));
        let (line, problem, _) = refusal(&extra);
        assert_eq!(line, line_of(&model_with(&extra), "FLT-OIL-01", 2));
        assert!(matches!(problem, Problem::NonPositiveQty { .. }), "{qty}");
    }
}

#[test]
fn part_listed_twice_in_one_list() {
    let extra = task_with(
        "every_days = 30\nparts = [\n  { part = \"FLT-OIL-01\", qty = 1 },\n  { part = \"FLT-OIL-01\", qty = 1 },\n]",
    );
    let (line, problem, _) = refusal(&extra);
    assert_eq!(line, line_of(&model_with(&extra), "FLT-OIL-01", 3));
    assert!(matches!(problem, Problem::RepeatedPartQty { .. }));
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let cases = [
        "\ncolour = \"green\"\n",
        "\n[[maintenance]]\ntask = \"t\"\nname = \"T\"\nevery_days = 30\ncolour = \"green\"\n",
        &fault_with("110", "0", "colour = \"green\""),
        &task_with(
            "every_days = 30\nparts = [{ part = \"FLT-OIL-01\", qty = 1, colour = \"green\" }]",
        ),
        "\n[modbus]\nunit = 1\ncolour = \"green\"\nregisters = []\n",
        "\n[modbus]\nunit = 1\nregisters = [{ name = \"a\", kind = \"input\", address = 1, type = \"u16\", colour = \"green\" }]\n",
    ];
    for extra in cases {
        // A top-level key after a table belongs to that table: put it first.
        let text = if extra.starts_with("\ncolour") {
            format!("colour = \"green\"\n{MODEL}")
        } else {
            model_with(extra)
        };
        let dir = Dir::new(PARTS, &[("m1.toml", &text)]);
        let err = dir.load().unwrap_err();
        let Some(Problem::Toml { message }) = err.problem() else {
            panic!("{extra}: {err}");
        };
        assert!(message.contains("unknown field `colour`"), "{message}");
        assert_eq!(
            err.location().unwrap().line,
            Some(line_of(&text, "colour", 1)),
            "{extra}"
        );
    }
}

#[test]
fn unknown_enum_values_and_wrong_types() {
    for (extra, needle) in [
        (fault_with("110", "0", "").replace("\"high\"", "\"urgent\""), "urgent"),
        (task_with("every_days = \"monthly\""), "monthly"),
        (
            "\n[modbus]\nunit = 1\nregisters = [{ name = \"a\", kind = \"input\", address = 1, type = \"f32\" }]\n"
                .to_owned(),
            "f32",
        ),
        (
            "\n[modbus]\nunit = 1\nregisters = [{ name = \"a\", kind = \"coil\", address = 1, type = \"u16\" }]\n"
                .to_owned(),
            "coil",
        ),
    ] {
        let (line, problem, _) = refusal(&extra);
        assert!(matches!(problem, Problem::Toml { .. }), "{extra}");
        assert_eq!(line, line_of(&model_with(&extra), needle, 1), "{extra}");
    }
    let text = MODEL.replace("\"sweeper\"", "\"truck\"");
    let err = Dir::new(PARTS, &[("m1.toml", &text)]).load().unwrap_err();
    assert_eq!(err.location().unwrap().line, Some(4));
    assert!(err.to_string().contains("truck"), "{err}");
}

#[test]
fn syntax_errors_have_a_line() {
    let extra = "\n[[faults]\nspn = 1\n";
    let (line, problem, _) = refusal(extra);
    assert!(matches!(problem, Problem::Toml { .. }));
    assert_eq!(line, line_of(&model_with(extra), "[[faults]", 1));
}

#[test]
fn missing_keys_are_named() {
    let text = MODEL.replace("kind = \"sweeper\"\n", "");
    let err = Dir::new(PARTS, &[("m1.toml", &text)]).load().unwrap_err();
    assert!(err.to_string().contains("missing field `kind`"), "{err}");
}

fn modbus_with(registers: &str) -> String {
    format!("\n[modbus]\nunit = 1\nregisters = [\n{registers}]\n")
}

#[test]
fn overlapping_registers() {
    let extra = modbus_with(concat!(
        "  { name = \"pto_hours\", kind = \"input\", address = 30, type = \"u32\" },\n",
        "  { name = \"level\", kind = \"holding\", address = 31, type = \"u16\" },\n",
        "  { name = \"temp\", kind = \"input\", address = 31, type = \"i16\" },\n",
    ));
    let (line, problem, message) = refusal(&extra);
    assert_eq!(line, line_of(&model_with(&extra), "\"temp\"", 1));
    assert!(matches!(
        problem,
        Problem::RegisterMap(RegisterMapError::Overlap { ref name, ref other_name, .. })
            if name == "temp" && other_name == "pto_hours"
    ));
    assert!(message.contains("[modbus] register \"temp\" overlaps register \"pto_hours\""));
}

#[test]
fn register_map_rules() {
    let cases = [
        (
            concat!(
                "  { name = \"a\", kind = \"input\", address = 1, type = \"u16\" },\n",
                "  { name = \"a\", kind = \"input\", address = 2, type = \"u16\" },\n",
            ),
            2,
        ),
        (
            "  { name = \"a\", kind = \"input\", address = 1, type = \"u16\", word_order = \"low_first\" },\n",
            1,
        ),
        (
            "  { name = \"a\", kind = \"input\", address = 1, type = \"u16\", scale = 0 },\n",
            1,
        ),
        (
            "  { name = \"a\", kind = \"input\", address = 65535, type = \"i32\" },\n",
            1,
        ),
    ];
    for (registers, nth) in cases {
        let extra = modbus_with(registers);
        let (line, problem, _) = refusal(&extra);
        assert!(matches!(problem, Problem::RegisterMap(_)), "{registers}");
        assert_eq!(
            line,
            line_of(&model_with(&extra), "{ name", nth),
            "{registers}"
        );
    }
    let extra = "\n[modbus]\nunit = 1\nregisters = []\n";
    let (line, problem, _) = refusal(extra);
    assert_eq!(problem, Problem::RegisterMap(RegisterMapError::NoRegisters));
    assert_eq!(line, line_of(&model_with(extra), "[modbus]", 1));
}

#[test]
fn ids_and_names() {
    let text = MODEL.replace("id = \"m1\"", "id = \"model one\"");
    let err = Dir::new(PARTS, &[("m1.toml", &text)]).load().unwrap_err();
    assert!(matches!(
        err.problem(),
        Some(Problem::InvalidId(InvalidId { what: "model", .. }))
    ));
    assert_eq!(err.location().unwrap().line, Some(1));

    let (_, problem, _) =
        refusal("\n[[maintenance]]\ntask = \"repair:110:0\"\nname = \"T\"\nevery_days = 1\n");
    assert!(matches!(
        problem,
        Problem::InvalidId(InvalidId { what: "task", .. })
    ));

    let (line, problem, _) = refusal(&task_with("every_days = 30").replace("\"T\"", "\"  \""));
    assert_eq!(
        problem,
        Problem::EmptyName {
            what: "task",
            id: "t".to_owned(),
            key: "name"
        }
    );
    assert_eq!(
        line,
        line_of(&model_with(&task_with("every_days = 30")), "\"T\"", 1)
    );

    let text = MODEL.replace("\"一号车型\"", "\"\"");
    let err = Dir::new(PARTS, &[("m1.toml", &text)]).load().unwrap_err();
    assert!(matches!(
        err.problem(),
        Some(Problem::EmptyName { key: "name_zh", .. })
    ));
}

#[test]
fn parts_file_rules() {
    let duplicate = format!(
        "{PARTS}\n[[part]]\nid = \"FLT-OIL-01\"\nname = \"Again\"\nunit = \"pcs\"\nlead_time_days = 1\n"
    );
    let dir = Dir::new(&duplicate, &[("m1.toml", MODEL)]);
    let err = dir.load().unwrap_err();
    assert_eq!(err.location().unwrap().path, dir.path(PARTS_FILE));
    assert_eq!(
        err.location().unwrap().line,
        Some(line_of(&duplicate, "id = \"FLT-OIL-01\"", 2))
    );
    assert_eq!(
        err.problem(),
        Some(&Problem::DuplicatePart {
            id: "FLT-OIL-01".to_owned(),
            first_line: line_of(&duplicate, "id = \"FLT-OIL-01\"", 1)
        })
    );

    let no_lead_time = PARTS.replace("lead_time_days = 2\n", "");
    let err = Dir::new(&no_lead_time, &[("m1.toml", MODEL)])
        .load()
        .unwrap_err();
    assert!(
        err.to_string().contains("missing field `lead_time_days`"),
        "{err}"
    );

    let negative = PARTS.replace("lead_time_days = 2", "lead_time_days = -2");
    let err = Dir::new(&negative, &[("m1.toml", MODEL)])
        .load()
        .unwrap_err();
    assert_eq!(
        err.location().unwrap().line,
        Some(line_of(&negative, "-2", 1))
    );

    let empty_unit = PARTS.replace("unit = \"L\"", "unit = \"\"");
    let err = Dir::new(&empty_unit, &[("m1.toml", MODEL)])
        .load()
        .unwrap_err();
    assert!(matches!(
        err.problem(),
        Some(Problem::EmptyName { key: "unit", .. })
    ));

    let bad_id = PARTS.replace("OIL-15W40-L", "OIL 15W40");
    let err = Dir::new(&bad_id, &[("m1.toml", MODEL)]).load().unwrap_err();
    assert!(matches!(
        err.problem(),
        Some(Problem::InvalidId(InvalidId { what: "part", .. }))
    ));

    let unknown_key = PARTS.replace("unit = \"L\"", "unit = \"L\"\nprice = 3");
    let err = Dir::new(&unknown_key, &[("m1.toml", MODEL)])
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `price`"), "{err}");
}

#[test]
fn directory_level_errors() {
    let empty = tempfile::tempdir().unwrap();
    let err = Catalog::load(empty.path()).unwrap_err();
    assert!(matches!(err, CatalogError::Read { ref path, .. } if path.ends_with(PARTS_FILE)));
    assert!(err.to_string().starts_with("cannot read "), "{err}");

    let dir = Dir::new(PARTS, &[("README.md", "# not a model")]);
    let err = dir.load().unwrap_err();
    assert!(matches!(err, CatalogError::NoModels { .. }), "{err}");
}

#[test]
fn ignores_what_is_not_a_model_file() {
    let dir = Dir::new(
        PARTS,
        &[
            ("m1.toml", MODEL),
            ("README.md", "# schema"),
            (".#m1.toml", "not toml at all ["),
            ("m1.toml.orig", "not toml at all ["),
        ],
    );
    std::fs::create_dir(dir.path("old.toml")).unwrap();
    let catalog = dir.load().unwrap();
    assert_eq!(catalog.models().count(), 1);
}

/// The shipped catalogue: every file loads, and the data says what the
/// product needs of it.
mod shipped {
    use std::collections::BTreeSet;

    use super::*;

    fn models_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
    }

    fn shipped() -> Catalog {
        match Catalog::load(&models_dir()) {
            Ok(catalog) => catalog,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_referenced_part_exists_and_every_part_is_used() {
        let catalog = shipped();
        let mut used = BTreeSet::new();
        for model in catalog.models() {
            let lists = model
                .maintenance
                .iter()
                .map(|t| &t.parts)
                .chain(model.faults.iter().map(|f| &f.parts));
            for list in lists {
                for qty in list {
                    assert!(
                        catalog.part(&qty.part).is_some(),
                        "{}: {}",
                        model.id,
                        qty.part
                    );
                    used.insert(qty.part.clone());
                }
            }
        }
        let listed: BTreeSet<PartId> = catalog.parts().map(|p| p.id.clone()).collect();
        let unused: Vec<_> = listed.difference(&used).collect();
        assert!(unused.is_empty(), "parts no model uses: {unused:?}");
    }

    #[test]
    fn has_a_sweeper_a_compactor_and_a_washer() {
        let catalog = shipped();
        assert!(catalog.models().count() >= 3);
        for kind in [TruckKind::Sweeper, TruckKind::Compactor, TruckKind::Washer] {
            assert!(catalog.models().any(|m| m.kind == kind), "no {kind}");
        }
    }

    #[test]
    fn every_plan_uses_every_meter() {
        for model in shipped().models() {
            for meter in IntervalMeter::ALL {
                assert!(
                    model
                        .maintenance
                        .iter()
                        .any(|t| t.interval(meter).is_some()),
                    "{} has no {meter} interval",
                    model.id
                );
            }
        }
    }

    #[test]
    fn every_model_has_critical_faults_and_a_register_map() {
        for model in shipped().models() {
            assert!(
                model
                    .faults
                    .iter()
                    .any(|f| f.severity == Severity::Critical),
                "{} has no critical fault",
                model.id
            );
            let map = model.modbus.as_ref();
            let plan = map.map(|m| m.plan_reads());
            assert!(
                matches!(plan, Some(Ok(ref requests)) if !requests.is_empty()),
                "{}: {plan:?}",
                model.id
            );
            assert!(
                map.and_then(|m| m.register("pto_hours")).is_some(),
                "{} has no pto_hours register",
                model.id
            );
        }
    }

    #[test]
    fn everything_has_a_chinese_name() {
        let catalog = shipped();
        for model in catalog.models() {
            assert!(model.name_zh.is_some(), "model {}", model.id);
            for task in &model.maintenance {
                assert!(task.name_zh.is_some(), "{} task {}", model.id, task.id);
            }
            for fault in &model.faults {
                assert!(
                    fault.name_zh.is_some(),
                    "{} fault {}/{}",
                    model.id,
                    fault.spn,
                    fault.fmi
                );
            }
        }
        for part in catalog.parts() {
            assert!(part.name_zh.is_some(), "part {}", part.id);
        }
    }

    /// Manufacturer-specific SPNs mean nothing without their table.
    #[test]
    fn proprietary_spns_are_documented() {
        let readme = std::fs::read_to_string(models_dir().join("README.md")).unwrap();
        for model in shipped().models() {
            for fault in &model.faults {
                if fault.spn.raw() >= 520_192 {
                    assert!(
                        readme.contains(&format!("| {} |", fault.spn)),
                        "SPN {} of {} is not in models/README.md",
                        fault.spn,
                        model.id
                    );
                }
            }
        }
    }

    /// Issue 23: every shipped model says what its signals' drifts lead
    /// to; each condition's fault is in the model's fault list, and its
    /// signal is a C12 name or one of the model's Modbus registers.
    #[test]
    fn the_compactor_hydraulic_oil_counts_hot_hours_twice() {
        let catalog = shipped();
        let model = catalog.model("compactor-c12").unwrap();
        let duty = model.task("hydraulic-oil").unwrap().duty.clone().unwrap();
        assert_eq!(duty.signal, "hydraulic_oil_temp_c");
        assert_eq!((duty.above, duty.factor), (80.0, 2.0));
        // The signal is one the model's body controller sends.
        assert!(
            model
                .modbus
                .as_ref()
                .unwrap()
                .registers
                .iter()
                .any(|r| r.name == duty.signal)
        );
    }

    #[test]
    fn every_model_has_realistic_conditions() {
        use fleetcare_ingest::j1939::Signal;
        for model in shipped().models() {
            assert!(
                !model.conditions.is_empty(),
                "{} has no [[conditions]]",
                model.id
            );
            for c in &model.conditions {
                assert!(
                    model.fault(c.spn, c.fmi).is_some(),
                    "{}: condition {} leads to SPN {} FMI {}, not in its faults",
                    model.id,
                    c.signal,
                    c.spn,
                    c.fmi
                );
                let register = model
                    .modbus
                    .as_ref()
                    .is_some_and(|m| m.registers.iter().any(|r| r.name == c.signal));
                assert!(
                    Signal::from_name(&c.signal).is_some() || register,
                    "{}: {}",
                    model.id,
                    c.signal
                );
                assert!(!c.parts.is_empty(), "{}: {}", model.id, c.signal);
            }
        }
    }

    #[test]
    fn a_bad_condition_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            models_dir().join("parts.toml"),
            dir.path().join("parts.toml"),
        )
        .unwrap();
        let text = std::fs::read_to_string(models_dir().join("washer-w10.toml")).unwrap();
        let bad = text.replacen("signal = \"pump_oil_temp_c\"", "signal = \"Pump Oil\"", 1);
        std::fs::write(dir.path().join("washer-w10.toml"), bad).unwrap();
        let e = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("washer-w10.toml:") && e.contains("\"Pump Oil\" is not a signal name"),
            "{e}"
        );
        let twice = text.replacen("signal = \"pump_oil_temp_c\"", "signal = \"battery_v\"", 1);
        std::fs::write(dir.path().join("washer-w10.toml"), twice).unwrap();
        let e = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("already listed on line"), "{e}");
    }
}

/// C10: `[warranty]` is read with its components and checked.
mod warranty_terms {
    use super::*;
    use crate::catalog::{WarrantyFacts, WarrantyStatus};

    const TERMS: &str = r#"
[warranty]
months = 24
engine_hours = 4000
km = 100000
exclude_parts = ["FLT-OIL-01"]

[[warranty.components]]
parts = ["OIL-15W40-L"]
months = 36
"#;

    #[test]
    fn terms_load_and_decide() {
        let dir = Dir::new(PARTS, &[("m1.toml", &model_with(TERMS))]);
        let catalog = dir.load().unwrap();
        let w = catalog.model("m1").unwrap().warranty.clone().unwrap();
        assert_eq!(w.limits.months, Some(24));
        assert_eq!(w.limits.engine_hours, Some(4000.0));
        assert!(w.excludes("FLT-OIL-01"));
        assert_eq!(w.components.len(), 1);
        let facts = WarrantyFacts {
            commissioned_on: Some("2025-01-01".parse().unwrap()),
            on: "2026-09-01".parse().unwrap(),
            engine_hours: Some(4100.0),
            km: Some(1000.0),
        };
        let cover = w.cover(&facts);
        assert_eq!(cover.decision.status, WarrantyStatus::Out);
        assert_eq!(cover.status_of("OIL-15W40-L"), WarrantyStatus::In);
    }

    #[test]
    fn bad_terms_are_refused_with_their_line() {
        let (line, problem, _) = refusal("\n[warranty]\nexclude_parts = []\n");
        assert!(line >= line_of(&model_with("\n[warranty]\n"), "[warranty]", 1));
        assert!(matches!(problem, Problem::WarrantyWithoutLimit { .. }));

        let text = "\n[warranty]\nmonths = 0\n";
        let (line, problem, message) = refusal(text);
        assert_eq!(line, line_of(&model_with(text), "months = 0", 1));
        assert!(matches!(
            problem,
            Problem::BadWarrantyLimit { key: "months", .. }
        ));
        assert!(message.ends_with("[warranty] has months = 0; a warranty limit must be a number greater than zero (months: a whole number)"), "{message}");

        let (_, problem, _) = refusal("\n[warranty]\nengine_hours = -5\n");
        assert!(matches!(
            problem,
            Problem::BadWarrantyLimit {
                key: "engine_hours",
                ..
            }
        ));

        let text = "\n[warranty]\nmonths = 24\nexclude_parts = [\"NOPE\"]\n";
        let (_, problem, _) = refusal(text);
        assert!(matches!(problem, Problem::UnknownPart { .. }));

        let text = "\n[warranty]\nmonths = 24\nexclude_parts = [\"FLT-OIL-01\"]\n\n[[warranty.components]]\nparts = [\"FLT-OIL-01\"]\nmonths = 36\n";
        let (line, problem, _) = refusal(text);
        assert_eq!(
            line,
            line_of(&model_with(text), "parts = [\"FLT-OIL-01\"]", 2)
        );
        assert_eq!(
            problem,
            Problem::RepeatedWarrantyPart {
                part: "FLT-OIL-01".into(),
                first_line: line_of(&model_with(text), "exclude_parts", 1),
            }
        );

        let (_, problem, _) = refusal(
            "\n[warranty]\nmonths = 24\n\n[[warranty.components]]\nparts = []\nmonths = 3\n",
        );
        assert_eq!(problem, Problem::ComponentWithoutParts);
        let (_, problem, _) = refusal("\n[warranty]\nmonths = 24\nyears = 2\n");
        assert!(matches!(problem, Problem::Toml { .. }));
    }

    /// Issue 21: every shipped model has realistic terms, wear parts
    /// (brushes, filters, fluids, linings, flaps, pads, nozzles) excluded.
    #[test]
    fn every_shipped_model_has_terms_that_exclude_wear_parts() {
        let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap();
        let wear = |id: &str| {
            [
                "FLT-",
                "BRUSH-",
                "OIL-",
                "-OIL-",
                "COOLANT",
                "BRAKE-LINING",
                "FLAP",
                "WEAR-PAD",
                "NOZZLE",
                "GREASE",
                "DEF-L",
            ]
            .iter()
            .any(|w| id.contains(w))
        };
        for model in catalog.models() {
            let w = model
                .warranty
                .as_ref()
                .unwrap_or_else(|| panic!("{} has no [warranty]", model.id));
            let months = w.limits.months.unwrap();
            assert!((12..=36).contains(&months), "{}: {months} months", model.id);
            let hours = w.limits.engine_hours.unwrap();
            assert!(
                (2000.0..=6000.0).contains(&hours),
                "{}: {hours} h",
                model.id
            );
            assert!(w.limits.km.is_some(), "{}", model.id);
            let used = model
                .maintenance
                .iter()
                .flat_map(|t| &t.parts)
                .chain(model.faults.iter().flat_map(|f| &f.parts));
            for qty in used {
                if wear(qty.part.as_str()) {
                    assert!(
                        w.excludes(qty.part.as_str()),
                        "{}: wear part {} is not excluded",
                        model.id,
                        qty.part
                    );
                }
            }
        }
        let s8 = catalog
            .model("sweeper-s8")
            .unwrap()
            .warranty
            .clone()
            .unwrap();
        assert!(s8.excludes("BRUSH-MAIN-01") && s8.excludes("BRUSH-SIDE-01"));
    }
}
