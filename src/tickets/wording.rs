//! Ticket titles in the fleet's or the reader's language (C10, issue 21
//! item 9), rendered from the facts every ticket stores — kind, vehicle,
//! model and key (`SPN:FMI` or a task id) — and the catalogue's names
//! (`name_zh`). The English title stays the one stored when the ticket
//! opened (`title_en`); complaints, manual reports and recalls carry a
//! title a person wrote, shown as written in every language.

use fleetcare_ingest::j1939::{Fmi, Spn};

use super::{Priority, Ticket, TicketKind};
use crate::catalog::Catalog;

pub use crate::registry::Language;

/// Sets each ticket's `title` to its fleet's language (`languages`; a
/// fleet not in it, or no fleet, speaks English); `title_en` stays.
pub fn in_fleet_languages(
    tickets: &mut [Ticket],
    catalog: &Catalog,
    languages: &std::collections::HashMap<fleetcare_ingest::ids::FleetId, Language>,
) {
    for t in tickets {
        let lang = t
            .fleet
            .as_ref()
            .and_then(|f| languages.get(f))
            .copied()
            .unwrap_or_default();
        t.title = title(t, catalog, lang);
    }
}

/// The ticket's title in `lang`: the stored (English) title for `en` and
/// for tickets whose title a person wrote; for zh-CN, a sentence from the
/// facts with the catalogue's Chinese names (a fault the catalogue has no
/// `name_zh` for is named by its code, still in a Chinese sentence).
pub fn title(ticket: &Ticket, catalog: &Catalog, lang: Language) -> String {
    match lang {
        Language::En => ticket.title_en.clone(),
        Language::ZhCn => title_zh(ticket, catalog).unwrap_or_else(|| ticket.title_en.clone()),
    }
}

fn code(key: &str) -> Option<(Spn, Fmi)> {
    let (spn, fmi) = key.split_once(':')?;
    Some((Spn::new(spn.parse().ok()?)?, Fmi::new(fmi.parse().ok()?)?))
}

/// The Chinese title, `None` for a title written by a person.
fn title_zh(t: &Ticket, catalog: &Catalog) -> Option<String> {
    let model = t.model.as_ref();
    let model_zh = || {
        model.map(|m| {
            catalog
                .model(m)
                .and_then(|e| e.name_zh.clone())
                .unwrap_or_else(|| m.to_string())
        })
    };
    let subject = t
        .vehicle
        .as_ref()
        .map(ToString::to_string)
        .or_else(model_zh)
        .unwrap_or_else(|| "车队".to_owned());
    let fault = || {
        let (spn, fmi) = code(&t.key)?;
        let named = model
            .and_then(|m| catalog.fault(m, spn, fmi))
            .and_then(|f| f.name_zh.clone());
        Some(named.unwrap_or_else(|| format!("故障码 SPN {} FMI {}", spn.raw(), fmi.raw())))
    };
    Some(match t.kind {
        TicketKind::Fault => format!("{subject}：{}", fault()?),
        TicketKind::Recurring => format!("{subject}：{}（反复故障）", fault()?),
        TicketKind::RepeatRepair => format!("{subject}：{}（返修）", fault()?),
        TicketKind::BatchDefect => {
            let model = model_zh().unwrap_or(subject);
            format!("{model}：{}（批量缺陷）", fault()?)
        }
        TicketKind::Maintenance => {
            let task = model
                .and_then(|m| catalog.model(m))
                .and_then(|m| m.task(t.key.as_str()))
                .map_or_else(
                    || t.key.clone(),
                    |task| task.name_zh.clone().unwrap_or_else(|| task.name.clone()),
                );
            // Overdue services open as P2, those falling due as P3.
            let when = if t.priority <= Priority::P2 {
                "已逾期"
            } else {
                "即将到期"
            };
            format!("{subject}：{task}{when}")
        }
        // The key is the drifting signal's name (C12); the fault it leads
        // to is in the details.
        TicketKind::Condition => format!("{subject}：{} 信号偏移（状态预警）", t.key),
        TicketKind::Complaint | TicketKind::Manual | TicketKind::Recall => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{TimeZone, Utc};
    use fleetcare_ingest::ids::{FleetId, VehicleId};

    use super::*;
    use crate::catalog::ModelId;
    use crate::db::Db;
    use crate::db::testing::db_tests;
    use crate::tickets::{NewAlert, SlaConfig, Tickets};

    db_tests!(titles_render_in_chinese_from_the_facts);

    async fn titles_render_in_chinese_from_the_facts(db: Db) {
        let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap();
        let tickets = Tickets::new(db, SlaConfig::default());
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
        let raise = |kind, vehicle: Option<&str>, key: &str, priority, title: &str| NewAlert {
            kind,
            fleet: Some(FleetId::new("acme").unwrap()),
            vehicle: vehicle.map(|v| VehicleId::new(v).unwrap()),
            model: Some(ModelId::new("compactor-c12").unwrap()),
            key: key.to_owned(),
            priority,
            title: title.to_owned(),
            details: String::new(),
            at,
        };
        let cases = [
            (
                raise(
                    TicketKind::Fault,
                    Some("TRK-1"),
                    "110:0",
                    Priority::P1,
                    "TRK-1: Engine coolant",
                ),
                "TRK-1：发动机冷却液温度过高（最严重）",
            ),
            (
                raise(
                    TicketKind::RepeatRepair,
                    Some("TRK-1"),
                    "110:0",
                    Priority::P2,
                    "x",
                ),
                "TRK-1：发动机冷却液温度过高（最严重）（返修）",
            ),
            (
                raise(
                    TicketKind::Recurring,
                    Some("TRK-2"),
                    "99999:3",
                    Priority::P3,
                    "x",
                ),
                "TRK-2：故障码 SPN 99999 FMI 3（反复故障）",
            ),
            (
                raise(TicketKind::BatchDefect, None, "110:0", Priority::P2, "x"),
                "压缩式垃圾车：发动机冷却液温度过高（最严重）（批量缺陷）",
            ),
            (
                raise(
                    TicketKind::Maintenance,
                    Some("TRK-3"),
                    "engine-oil",
                    Priority::P2,
                    "x",
                ),
                "TRK-3：更换机油及机油滤清器已逾期",
            ),
            (
                raise(
                    TicketKind::Maintenance,
                    Some("TRK-4"),
                    "engine-oil",
                    Priority::P3,
                    "x",
                ),
                "TRK-4：更换机油及机油滤清器即将到期",
            ),
        ];
        for (alert, zh) in cases {
            let en = alert.title.clone();
            let t = tickets.raise(alert).await.unwrap().into_ticket();
            let model_zh = catalog
                .model("compactor-c12")
                .and_then(|m| m.name_zh.clone())
                .unwrap();
            let zh = zh.replace("压缩式垃圾车", &model_zh);
            assert_eq!(title(&t, &catalog, Language::ZhCn), zh);
            assert_eq!(title(&t, &catalog, Language::En), en);
        }
        // A person's words stay as written.
        let complaint = tickets
            .create(
                TicketKind::Complaint,
                FleetId::new("acme").unwrap(),
                VehicleId::new("TRK-1").unwrap(),
                None,
                "Bin lifter noisy".into(),
                "since Monday".into(),
                "support-1",
                at,
            )
            .await
            .unwrap();
        assert_eq!(
            title(&complaint, &catalog, Language::ZhCn),
            "Bin lifter noisy"
        );
    }

    #[test]
    fn languages_parse_as_c10_writes_them() {
        assert_eq!(Language::parse("zh-CN"), Some(Language::ZhCn));
        assert_eq!(Language::parse("en"), Some(Language::En));
        assert_eq!(Language::parse("fr"), None);
        assert_eq!(Language::default(), Language::En);
        assert_eq!(serde_json::to_value(Language::ZhCn).unwrap(), "zh-CN");
    }
}
