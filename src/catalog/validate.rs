//! From the files as written to the catalogue's types: every rule that
//! serde cannot express, each failing with the line to fix.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use fleetcare_ingest::j1939::{Fmi, Spn};
use fleetcare_ingest::modbus::RegisterMap;
use toml::Spanned;

use super::error::{Problem, Result};
use super::file::{
    ComponentSection, ConditionLine, DutyEntry, FaultLine, ModbusSection, ModelFile, PartQtyEntry,
    PartsFile, Source, TaskEntry, WarrantySection,
};
use super::model::{
    ConditionEntry, Duty, FaultEntry, Interval, IntervalMeter, MaintenanceTask, PartQty,
    TruckModel, default_due_soon,
};
use super::part::Part;
use super::warranty::{Component, Limits, Warranty};
use fleetcare_ingest::ids::{InvalidId, ModelId, PartId, TaskId};

/// The parts of `parts.toml`, by id.
pub(super) fn parts(source: &Source) -> Result<BTreeMap<PartId, Part>> {
    let file: PartsFile = source.parse()?;
    let mut parts = BTreeMap::new();
    let mut first_lines: HashMap<PartId, usize> = HashMap::new();
    for entry in file.part {
        let id = checked_id(source, &entry.id, PartId::new)?;
        if let Some(&first_line) = first_lines.get(&id) {
            return Err(source.error_at(
                &entry.id.span(),
                Problem::DuplicatePart {
                    id: id.to_string(),
                    first_line,
                },
            ));
        }
        first_lines.insert(id.clone(), source.line_of(&entry.id.span()));
        let owner = Owner::new(PartId::WHAT, id.as_str());
        let safety_stock_weeks = match &entry.safety_stock_weeks {
            None => super::DEFAULT_SAFETY_STOCK_WEEKS,
            Some(w) if w.get_ref().is_finite() && (0.0..=52.0).contains(w.get_ref()) => {
                *w.get_ref()
            }
            Some(w) => {
                return Err(source.error_at(
                    &w.span(),
                    Problem::BadSafetyStock {
                        part: id.to_string(),
                        weeks: *w.get_ref(),
                    },
                ));
            }
        };
        let part = Part {
            safety_stock_weeks,
            name: owner.text(source, &entry.name, "name")?,
            name_zh: owner.optional_text(source, entry.name_zh.as_ref(), "name_zh")?,
            unit: owner.text(source, &entry.unit, "unit")?,
            lead_time_days: entry.lead_time_days,
            id: id.clone(),
        };
        parts.insert(id, part);
    }
    Ok(parts)
}

/// One model file, checked against the parts and the models read before it
/// (by id, with the file each came from).
pub(super) fn model(
    source: &Source,
    parts: &BTreeMap<PartId, Part>,
    defined: &HashMap<ModelId, PathBuf>,
) -> Result<TruckModel> {
    let file: ModelFile = source.parse()?;
    let id = checked_id(source, &file.id, ModelId::new)?;
    if let Some(first) = defined.get(&id) {
        return Err(source.error_at(
            &file.id.span(),
            Problem::DuplicateModel {
                id: id.to_string(),
                first: first.clone(),
            },
        ));
    }
    let owner = Owner::new(ModelId::WHAT, id.as_str());
    let name = owner.text(source, &file.name, "name")?;
    let name_zh = owner.optional_text(source, file.name_zh.as_ref(), "name_zh")?;

    let mut maintenance = Vec::with_capacity(file.maintenance.len());
    let mut task_lines: HashMap<TaskId, usize> = HashMap::new();
    for entry in file.maintenance {
        let span = entry.task.span();
        let task = task(source, entry, parts)?;
        if let Some(&first_line) = task_lines.get(&task.id) {
            return Err(source.error_at(
                &span,
                Problem::DuplicateTask {
                    task: task.id.to_string(),
                    first_line,
                },
            ));
        }
        task_lines.insert(task.id.clone(), source.line_of(&span));
        maintenance.push(task);
    }

    let mut faults = Vec::with_capacity(file.faults.len());
    let mut fault_lines: HashMap<(Spn, Fmi), usize> = HashMap::new();
    for line in file.faults {
        let span = line.spn.span();
        let fault = fault(source, line, parts)?;
        if let Some(&first_line) = fault_lines.get(&(fault.spn, fault.fmi)) {
            return Err(source.error_at(
                &span,
                Problem::DuplicateFault {
                    spn: fault.spn.raw(),
                    fmi: fault.fmi.raw(),
                    first_line,
                },
            ));
        }
        fault_lines.insert((fault.spn, fault.fmi), source.line_of(&span));
        faults.push(fault);
    }

    let modbus = match file.modbus {
        Some(section) => Some(register_map(source, section)?),
        None => None,
    };

    let warranty = match file.warranty {
        Some(section) => Some(warranty(source, section, parts)?),
        None => None,
    };
    let mut conditions: Vec<ConditionEntry> = Vec::with_capacity(file.conditions.len());
    let mut condition_lines: HashMap<String, usize> = HashMap::new();
    for line in file.conditions {
        let span = line.signal.span();
        let entry = condition(source, line, parts)?;
        if let Some(&first_line) = condition_lines.get(&entry.signal) {
            return Err(source.error_at(
                &span,
                Problem::DuplicateCondition {
                    signal: entry.signal.clone(),
                    first_line,
                },
            ));
        }
        condition_lines.insert(entry.signal.clone(), source.line_of(&span));
        conditions.push(entry);
    }

    Ok(TruckModel {
        id,
        name,
        name_zh,
        kind: file.kind,
        maintenance,
        faults,
        modbus,
        warranty,
        conditions,
    })
}

/// `[warranty]`: limits that make sense, parts from `parts.toml`, each
/// part excluded or in one component at most once.
fn warranty(
    source: &Source,
    section: Spanned<WarrantySection>,
    parts: &BTreeMap<PartId, Part>,
) -> Result<Warranty> {
    let span = section.span();
    let section = section.into_inner();
    let general = limits(
        source,
        &span,
        "[warranty]",
        section.months,
        section.engine_hours,
        section.km,
    )?;
    let mut named: HashMap<PartId, usize> = HashMap::new();
    let mut part_id = |entry: &Spanned<String>| -> Result<PartId> {
        let name = entry.get_ref();
        let Some(part) = parts.get(name.as_str()) else {
            return Err(source.error_at(&entry.span(), Problem::UnknownPart { part: name.clone() }));
        };
        if let Some(&first_line) = named.get(&part.id) {
            return Err(source.error_at(
                &entry.span(),
                Problem::RepeatedWarrantyPart {
                    part: name.clone(),
                    first_line,
                },
            ));
        }
        named.insert(part.id.clone(), source.line_of(&entry.span()));
        Ok(part.id.clone())
    };
    let exclude_parts = section
        .exclude_parts
        .iter()
        .map(&mut part_id)
        .collect::<Result<Vec<_>>>()?;
    let mut components = Vec::with_capacity(section.components.len());
    for component in section.components {
        let span = component.span();
        let ComponentSection {
            parts: listed,
            months,
            engine_hours,
            km,
        } = component.into_inner();
        if listed.is_empty() {
            return Err(source.error_at(&span, Problem::ComponentWithoutParts));
        }
        let own = limits(
            source,
            &span,
            "[[warranty.components]]",
            months,
            engine_hours,
            km,
        )?;
        let parts = listed
            .iter()
            .map(&mut part_id)
            .collect::<Result<Vec<_>>>()?;
        components.push(Component { parts, limits: own });
    }
    Ok(Warranty {
        limits: general,
        exclude_parts,
        components,
    })
}

/// The limits of a warranty section: at least one, each above zero.
fn limits(
    source: &Source,
    span: &std::ops::Range<usize>,
    section: &'static str,
    months: Option<Spanned<i64>>,
    engine_hours: Option<Spanned<f64>>,
    km: Option<Spanned<f64>>,
) -> Result<Limits> {
    let months = months
        .map(|m| {
            u32::try_from(*m.get_ref())
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    source.error_at(
                        &m.span(),
                        Problem::BadWarrantyLimit {
                            section,
                            key: "months",
                            value: *m.get_ref() as f64,
                        },
                    )
                })
        })
        .transpose()?;
    let positive = |key: &'static str, v: Option<Spanned<f64>>| -> Result<Option<f64>> {
        v.map(|v| {
            let value = *v.get_ref();
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(source.error_at(
                    &v.span(),
                    Problem::BadWarrantyLimit {
                        section,
                        key,
                        value,
                    },
                ))
            }
        })
        .transpose()
    };
    let limits = Limits {
        months,
        engine_hours: positive("engine_hours", engine_hours)?,
        km: positive("km", km)?,
    };
    if !limits.any() {
        return Err(source.error_at(span, Problem::WarrantyWithoutLimit { section }));
    }
    Ok(limits)
}

fn task(
    source: &Source,
    entry: TaskEntry,
    parts: &BTreeMap<PartId, Part>,
) -> Result<MaintenanceTask> {
    let id = checked_id(source, &entry.task, TaskId::new)?;
    let owner = Owner::new(TaskId::WHAT, id.as_str());
    let name = owner.text(source, &entry.name, "name")?;
    let name_zh = owner.optional_text(source, entry.name_zh.as_ref(), "name_zh")?;

    let given = [
        (
            IntervalMeter::EngineHours,
            entry.every_engine_hours,
            entry.due_soon_engine_hours,
        ),
        (
            IntervalMeter::PtoHours,
            entry.every_pto_hours,
            entry.due_soon_pto_hours,
        ),
        (IntervalMeter::OdometerKm, entry.every_km, entry.due_soon_km),
        (IntervalMeter::Days, entry.every_days, entry.due_soon_days),
    ];
    let mut intervals = Vec::new();
    for (meter, every, window) in given {
        if let Some(interval) = interval(source, &id, meter, every, window)? {
            intervals.push(interval);
        }
    }
    if intervals.is_empty() {
        return Err(source.error_at(
            &entry.task.span(),
            Problem::NoInterval {
                task: id.to_string(),
            },
        ));
    }

    let duty = match entry.duty {
        Some(d) => Some(duty(source, &id, d.into_inner())?),
        None => None,
    };
    Ok(MaintenanceTask {
        parts: part_list(source, entry.parts, parts)?,
        duty,
        id,
        name,
        name_zh,
        intervals,
    })
}

/// A task's `duty`: a signal name, a finite level, a factor of at least 1.
fn duty(source: &Source, task: &TaskId, d: DutyEntry) -> Result<Duty> {
    let signal = d.signal.get_ref();
    if fleetcare_ingest::j1939::SignalName::new(signal).is_none() {
        return Err(source.error_at(
            &d.signal.span(),
            Problem::BadDutySignal {
                task: task.to_string(),
                signal: signal.clone(),
            },
        ));
    }
    let above = *d.above.get_ref();
    if !above.is_finite() {
        return Err(source.error_at(
            &d.above.span(),
            Problem::BadDutyLevel {
                task: task.to_string(),
                value: above,
            },
        ));
    }
    let factor = *d.factor.get_ref();
    if !(factor.is_finite() && factor >= 1.0) {
        return Err(source.error_at(
            &d.factor.span(),
            Problem::BadDutyFactor {
                task: task.to_string(),
                value: factor,
            },
        ));
    }
    Ok(Duty {
        signal: signal.clone(),
        above,
        factor,
    })
}

/// The interval of a task on one meter, if it has one.
fn interval(
    source: &Source,
    id: &TaskId,
    meter: IntervalMeter,
    every: Option<Spanned<f64>>,
    window: Option<Spanned<f64>>,
) -> Result<Option<Interval>> {
    let Some(every) = every else {
        if let Some(window) = window {
            return Err(source.error_at(
                &window.span(),
                Problem::DueSoonWithoutInterval {
                    task: id.to_string(),
                    key: meter.due_soon_key(),
                    interval_key: meter.every_key(),
                },
            ));
        }
        return Ok(None);
    };
    let interval = *every.get_ref();
    let positive = interval.is_finite() && interval > 0.0;
    if !positive {
        return Err(source.error_at(
            &every.span(),
            Problem::NonPositiveInterval {
                task: id.to_string(),
                key: meter.every_key(),
                value: interval,
            },
        ));
    }
    check_whole_days(source, id, meter, meter.every_key(), &every)?;
    let due_soon = match window {
        None => default_due_soon(interval),
        Some(window) => {
            let value = *window.get_ref();
            if value.is_nan() || value < 0.0 {
                return Err(source.error_at(
                    &window.span(),
                    Problem::NegativeDueSoon {
                        task: id.to_string(),
                        key: meter.due_soon_key(),
                        window: value,
                    },
                ));
            }
            if value >= interval {
                return Err(source.error_at(
                    &window.span(),
                    Problem::DueSoonNotBelowInterval {
                        task: id.to_string(),
                        key: meter.due_soon_key(),
                        window: value,
                        interval_key: meter.every_key(),
                        interval,
                    },
                ));
            }
            check_whole_days(source, id, meter, meter.due_soon_key(), &window)?;
            value
        }
    };
    Ok(Some(Interval {
        meter,
        every: interval,
        due_soon,
    }))
}

/// Day intervals are counted in whole calendar days.
fn check_whole_days(
    source: &Source,
    task: &TaskId,
    meter: IntervalMeter,
    key: &'static str,
    value: &Spanned<f64>,
) -> Result<()> {
    if meter == IntervalMeter::Days && value.get_ref().fract() != 0.0 {
        return Err(source.error_at(
            &value.span(),
            Problem::FractionalDays {
                task: task.to_string(),
                key,
                value: *value.get_ref(),
            },
        ));
    }
    Ok(())
}

fn fault(source: &Source, line: FaultLine, parts: &BTreeMap<PartId, Part>) -> Result<FaultEntry> {
    let raw_spn = *line.spn.get_ref();
    let spn = u32::try_from(raw_spn)
        .ok()
        .and_then(Spn::new)
        .ok_or_else(|| {
            source.error_at(&line.spn.span(), Problem::SpnOutOfRange { spn: raw_spn })
        })?;
    let raw_fmi = *line.fmi.get_ref();
    let fmi = u8::try_from(raw_fmi)
        .ok()
        .and_then(Fmi::new)
        .ok_or_else(|| {
            source.error_at(&line.fmi.span(), Problem::FmiOutOfRange { fmi: raw_fmi })
        })?;
    let label = format!("SPN {spn} FMI {fmi}");
    let owner = Owner::new("fault", &label);
    Ok(FaultEntry {
        spn,
        fmi,
        name: owner.text(source, &line.name, "name")?,
        name_zh: owner.optional_text(source, line.name_zh.as_ref(), "name_zh")?,
        severity: line.severity,
        parts: part_list(source, line.parts, parts)?,
    })
}

fn condition(
    source: &Source,
    line: ConditionLine,
    parts: &BTreeMap<PartId, Part>,
) -> Result<ConditionEntry> {
    let signal = line.signal.get_ref();
    if fleetcare_ingest::j1939::SignalName::new(signal).is_none() {
        return Err(source.error_at(
            &line.signal.span(),
            Problem::BadSignal {
                signal: signal.clone(),
            },
        ));
    }
    let span = line.fault.span();
    let fault = line.fault.get_ref();
    let spn = u32::try_from(fault.spn)
        .ok()
        .and_then(Spn::new)
        .ok_or_else(|| source.error_at(&span, Problem::SpnOutOfRange { spn: fault.spn }))?;
    let fmi = u8::try_from(fault.fmi)
        .ok()
        .and_then(Fmi::new)
        .ok_or_else(|| source.error_at(&span, Problem::FmiOutOfRange { fmi: fault.fmi }))?;
    Ok(ConditionEntry {
        signal: signal.clone(),
        direction: line.direction,
        spn,
        fmi,
        parts: part_list(source, line.parts, parts)?,
    })
}

fn part_list(
    source: &Source,
    entries: Vec<PartQtyEntry>,
    parts: &BTreeMap<PartId, Part>,
) -> Result<Vec<PartQty>> {
    let mut list: Vec<PartQty> = Vec::with_capacity(entries.len());
    for entry in entries {
        let name = entry.part.get_ref();
        let Some(part) = parts.get(name.as_str()) else {
            return Err(source.error_at(
                &entry.part.span(),
                Problem::UnknownPart { part: name.clone() },
            ));
        };
        let qty = *entry.qty.get_ref();
        let positive = qty.is_finite() && qty > 0.0;
        if !positive {
            return Err(source.error_at(
                &entry.qty.span(),
                Problem::NonPositiveQty {
                    part: name.clone(),
                    qty,
                },
            ));
        }
        if list.iter().any(|p| p.part == part.id) {
            return Err(source.error_at(
                &entry.part.span(),
                Problem::RepeatedPartQty { part: name.clone() },
            ));
        }
        list.push(PartQty {
            part: part.id.clone(),
            qty,
        });
    }
    Ok(list)
}

fn register_map(source: &Source, section: Spanned<ModbusSection>) -> Result<RegisterMap> {
    let section_span = section.span();
    let section = section.into_inner();
    let spans: Vec<_> = section.registers.iter().map(Spanned::span).collect();
    let map = RegisterMap {
        unit: section.unit,
        registers: section
            .registers
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
    };
    match map.validate() {
        Ok(()) => Ok(map),
        Err(e) => {
            let span = e
                .register_index()
                .and_then(|i| spans.get(i))
                .unwrap_or(&section_span);
            Err(source.error_at(span, Problem::RegisterMap(e)))
        }
    }
}

fn checked_id<T>(
    source: &Source,
    id: &Spanned<String>,
    new: fn(String) -> std::result::Result<T, InvalidId>,
) -> Result<T> {
    new(id.get_ref().clone()).map_err(|e| source.error_at(&id.span(), Problem::InvalidId(e)))
}

/// The entry a name belongs to, for messages about its text fields.
struct Owner<'a> {
    what: &'static str,
    id: &'a str,
}

impl<'a> Owner<'a> {
    fn new(what: &'static str, id: &'a str) -> Self {
        Self { what, id }
    }

    /// A text that must say something.
    fn text(&self, source: &Source, value: &Spanned<String>, key: &'static str) -> Result<String> {
        if value.get_ref().trim().is_empty() {
            return Err(source.error_at(
                &value.span(),
                Problem::EmptyName {
                    what: self.what,
                    id: self.id.to_owned(),
                    key,
                },
            ));
        }
        Ok(value.get_ref().clone())
    }

    /// An optional text that, when given, must say something.
    fn optional_text(
        &self,
        source: &Source,
        value: Option<&Spanned<String>>,
        key: &'static str,
    ) -> Result<Option<String>> {
        value.map(|v| self.text(source, v, key)).transpose()
    }
}
