//! The ticket store on real databases: SQLite, and PostgreSQL when
//! `FLEETCARE_TEST_POSTGRES_URL` is set (see `crate::db::testing`).

use chrono::{DateTime, TimeDelta, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use tokio::task::JoinSet;

use super::*;
use crate::catalog::TaskId;
use crate::db::Db;
use crate::db::testing::db_tests;
use crate::registry::{self, ServiceSource, ServiceTask};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-03T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn minutes(m: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(m)
}

fn fleet(f: &str) -> FleetId {
    FleetId::new(f).unwrap()
}

fn vehicle(v: &str) -> VehicleId {
    VehicleId::new(v).unwrap()
}

fn fault(v: &str, key: &str, at: DateTime<Utc>) -> NewAlert {
    NewAlert {
        kind: TicketKind::Fault,
        fleet: Some(fleet("acme")),
        vehicle: Some(vehicle(v)),
        model: Some(ModelId::new("compactor-c12").unwrap()),
        key: key.to_owned(),
        priority: Priority::P1,
        title: format!("red stop lamp: {key}"),
        details: "DM1 with the red stop lamp on".to_owned(),
        at,
    }
}

fn tickets(db: Db) -> Tickets {
    Tickets::new(db, SlaConfig::default())
}

async fn register(db: &Db, v: &str) {
    sqlx::query(
        "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
         VALUES ($1, 'acme', 'compactor-c12', NULL, '2024-01-01', 'north')",
    )
    .bind(v)
    .execute(db.pool())
    .await
    .unwrap();
}

/// Moves `id` from open to closed with everything each move needs.
async fn close(t: &Tickets, id: TicketId, at: DateTime<Utc>) -> Ticket {
    use TicketState::*;
    for to in [
        Dispatched,
        Diagnosing,
        InRepair,
        QualityCheck,
        Delivered,
        Closed,
    ] {
        let step = Transition {
            assignee: (to == Dispatched).then(|| "Wang Lei".to_owned()),
            outlet: (to == Dispatched).then(|| "north workshop".to_owned()),
            satisfaction: (to == Closed).then_some(4),
            ..Transition::to(to)
        };
        t.transition(id, step, "planner-1", at).await.unwrap();
    }
    t.get(id).await.unwrap().unwrap().0
}

async fn one_hundred_simultaneous_alerts_make_one_ticket(db: Db) {
    let t = tickets(db);
    let mut set = JoinSet::new();
    for i in 0..100 {
        let t = t.clone();
        set.spawn(async move { t.raise(fault("TRK-001", "110:0", minutes(i % 7))).await });
    }
    let (mut opened, mut occurrences) = (Vec::new(), 0);
    while let Some(done) = set.join_next().await {
        match done.unwrap().unwrap() {
            Raised::Opened(ticket) => opened.push(ticket.id),
            Raised::Occurrence(_) => occurrences += 1,
        }
    }
    assert_eq!(opened, [TicketId(1)]);
    assert_eq!(occurrences, 99);
    let all = t.list(&TicketFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].occurrences, 100);
    // The latest alert time, whatever order they committed in.
    assert_eq!(all[0].updated_at, minutes(6));
    let (_, events) = t.get(TicketId(1)).await.unwrap().unwrap();
    assert_eq!(events.len(), 100);
    assert_eq!(events[0].kind, "opened");
    assert!(
        events[1..]
            .iter()
            .all(|e| e.kind == "occurrence" && e.actor == "fleetcare")
    );
    // The next ticket still gets the next number: lost races gave theirs back.
    let next = t.raise(fault("TRK-002", "110:0", t0())).await.unwrap();
    assert_eq!(next.ticket().id, TicketId(2));
}

async fn duplicates_are_per_vehicle_kind_and_key(db: Db) {
    let t = tickets(db);
    let first = t.raise(fault("TRK-001", "110:0", t0())).await.unwrap();
    assert!(matches!(first, Raised::Opened(_)));
    // The same key spelt differently is the same problem.
    let again = t
        .raise(fault("TRK-001", "0110:00", minutes(1)))
        .await
        .unwrap();
    assert!(
        matches!(&again, Raised::Occurrence(x) if x.id == first.ticket().id && x.occurrences == 2)
    );
    // Another vehicle, another key, another kind: new tickets.
    let other_vehicle = t.raise(fault("TRK-002", "110:0", t0())).await.unwrap();
    let other_key = t.raise(fault("TRK-001", "91:3", t0())).await.unwrap();
    let other_kind = t
        .raise(NewAlert {
            kind: TicketKind::Recurring,
            priority: Priority::P2,
            ..fault("TRK-001", "110:0", t0())
        })
        .await
        .unwrap();
    let ids: Vec<_> = [&other_vehicle, &other_key, &other_kind]
        .iter()
        .map(|r| (matches!(r, Raised::Opened(_)), r.ticket().id))
        .collect();
    assert_eq!(
        ids,
        [
            (true, TicketId(2)),
            (true, TicketId(3)),
            (true, TicketId(4))
        ]
    );
    // A more urgent repeat raises the priority of the ticket.
    let p3 = NewAlert {
        kind: TicketKind::Maintenance,
        priority: Priority::P3,
        ..fault("TRK-001", "engine-oil", t0())
    };
    assert_eq!(
        t.raise(p3.clone()).await.unwrap().ticket().priority,
        Priority::P3
    );
    let p2 = NewAlert {
        priority: Priority::P2,
        ..p3.clone()
    };
    assert_eq!(t.raise(p2).await.unwrap().ticket().priority, Priority::P2);
    assert_eq!(t.raise(p3).await.unwrap().ticket().priority, Priority::P2);

    // Batch defects are per model, across vehicles and fleets.
    let batch = |v: Option<&str>| NewAlert {
        kind: TicketKind::BatchDefect,
        fleet: None,
        vehicle: v.map(vehicle),
        priority: Priority::P2,
        ..fault("TRK-001", "110:0", t0())
    };
    let b1 = t.raise(batch(None)).await.unwrap();
    let b2 = t.raise(batch(Some("TRK-009"))).await.unwrap();
    assert!(matches!(b1, Raised::Opened(_)));
    assert!(matches!(&b2, Raised::Occurrence(x) if x.id == b1.ticket().id && x.fleet.is_none()));

    // Alerts that do not say what they are about are refused.
    let e = t
        .raise(NewAlert {
            vehicle: None,
            ..fault("x", "110:0", t0())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            TicketError::InvalidAlert {
                kind: TicketKind::Fault,
                ..
            }
        ),
        "{e}"
    );
    let e = t
        .raise(NewAlert {
            model: None,
            ..batch(None)
        })
        .await
        .unwrap_err();
    assert!(matches!(e, TicketError::InvalidAlert { .. }), "{e}");
    let e = t.raise(fault("TRK-001", "110", t0())).await.unwrap_err();
    assert!(matches!(e, TicketError::InvalidKey { .. }), "{e}");
}

async fn an_alert_after_closing_opens_a_new_ticket(db: Db) {
    let t = tickets(db);
    let first = t
        .raise(fault("TRK-001", "110:0", t0()))
        .await
        .unwrap()
        .into_ticket();
    let closed = close(&t, first.id, minutes(30)).await;
    assert_eq!(closed.state, TicketState::Closed);
    assert_eq!(closed.closed_at, Some(minutes(30)));
    let second = t
        .raise(fault("TRK-001", "110:0", minutes(40)))
        .await
        .unwrap();
    assert!(matches!(&second, Raised::Opened(x) if x.id == TicketId(2) && x.occurrences == 1));
    // Cancelled tickets do not count either.
    t.transition(
        second.ticket().id,
        Transition::to(TicketState::Cancelled),
        "planner-1",
        minutes(41),
    )
    .await
    .unwrap();
    let third = t
        .raise(fault("TRK-001", "110:0", minutes(42)))
        .await
        .unwrap();
    assert!(matches!(&third, Raised::Opened(x) if x.id == TicketId(3)));
    // The closed one kept its count.
    let (old, _) = t.get(first.id).await.unwrap().unwrap();
    assert_eq!((old.occurrences, old.state), (1, TicketState::Closed));
}

async fn moves_are_checked_and_recorded(db: Db) {
    use TicketState::*;
    let t = tickets(db);
    let id = t
        .raise(fault("TRK-001", "110:0", t0()))
        .await
        .unwrap()
        .ticket()
        .id;

    let e = t
        .transition(id, Transition::to(Closed), "planner-1", minutes(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, TicketError::Refused { from: Open, to: Closed, allowed } if allowed == &[Dispatched, Cancelled]),
        "{e}"
    );
    assert!(e.to_string().contains("dispatched or cancelled"), "{e}");
    let e = t
        .transition(id, Transition::to(Dispatched), "planner-1", minutes(1))
        .await
        .unwrap_err();
    assert!(matches!(e, TicketError::DispatchIncomplete { .. }), "{e}");
    let e = t
        .transition(
            TicketId(99),
            Transition::to(Dispatched),
            "planner-1",
            minutes(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, TicketError::NotFound(TicketId(99))), "{e}");

    let dispatched = t
        .transition(
            id,
            Transition {
                note: Some("truck at depot".into()),
                assignee: Some("Wang Lei".into()),
                outlet: Some("north workshop".into()),
                ..Transition::to(Dispatched)
            },
            "planner-1",
            minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(dispatched.state, Dispatched);
    assert_eq!(dispatched.assignee.as_deref(), Some("Wang Lei"));
    assert_eq!(dispatched.outlet.as_deref(), Some("north workshop"));
    assert_eq!(dispatched.updated_at, minutes(5));

    for to in [
        Diagnosing,
        InRepair,
        QualityCheck,
        InRepair,
        QualityCheck,
        Delivered,
    ] {
        let moved = t
            .transition(
                id,
                Transition {
                    parts_used: if to == InRepair {
                        vec![("FLT-OIL-01".into(), 1)]
                    } else {
                        Vec::new()
                    },
                    ..Transition::to(to)
                },
                "tech-7",
                minutes(10),
            )
            .await
            .unwrap();
        assert_eq!(moved.state, to);
    }
    // Closing needs the score.
    for bad in [None, Some(0), Some(6)] {
        let e = t
            .transition(
                id,
                Transition {
                    satisfaction: bad,
                    ..Transition::to(Closed)
                },
                "planner-1",
                minutes(20),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, TicketError::SatisfactionRequired { given } if given == bad),
            "{e}"
        );
    }
    let closed = t
        .transition(
            id,
            Transition {
                satisfaction: Some(3),
                outcome: Some(Outcome::PartReplaced),
                labour_hours: Some(2.5),
                parts_used: vec![("GSK-7".into(), 2)],
                warranty: Some(true),
                ..Transition::to(Closed)
            },
            "planner-1",
            minutes(20),
        )
        .await
        .unwrap();
    assert_eq!(closed.state, Closed);
    assert_eq!(closed.satisfaction, Some(3));
    assert_eq!(closed.outcome, Some(Outcome::PartReplaced));
    assert_eq!(closed.labour_hours, Some(2.5));
    assert_eq!(closed.warranty_claim, Some(true));
    assert_eq!(
        closed.parts_used,
        [
            PartUsed {
                part: "FLT-OIL-01".into(),
                qty: 2,
                covered: Some(true),
            },
            PartUsed {
                part: "GSK-7".into(),
                qty: 2,
                covered: Some(true),
            }
        ]
    );
    let e = t
        .transition(id, Transition::to(Open), "planner-1", minutes(21))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, TicketError::Refused { allowed, .. } if allowed.is_empty()),
        "{e}"
    );

    let (_, events) = t.get(id).await.unwrap().unwrap();
    let moves: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "moved")
        .map(|e| (e.from.unwrap(), e.to.unwrap(), e.actor.as_str()))
        .collect();
    assert_eq!(moves.len(), 8);
    assert_eq!(moves[0], (Open, Dispatched, "planner-1"));
    assert_eq!(moves[3], (InRepair, QualityCheck, "tech-7"));
    assert_eq!(moves[4], (QualityCheck, InRepair, "tech-7"));
    assert_eq!(moves[7], (Delivered, Closed, "planner-1"));
    assert_eq!(
        events[1].note.as_deref(),
        Some("truck at depot; assignee Wang Lei; outlet north workshop")
    );
    assert_eq!(events[1].at, minutes(5));
    // Refused moves left no trace.
    assert_eq!(events.len(), 9);
}

/// Meters a closing maintenance ticket reads, as the store would give.
#[derive(Debug)]
struct FixedMeters;

impl super::MeterSource for FixedMeters {
    fn readings(&self, _: &FleetId, _: &VehicleId) -> super::MeterReadings {
        super::MeterReadings {
            engine_hours: Some(1234.5),
            pto_hours: None,
            odometer_km: Some(48_211.0),
        }
    }
}

async fn closing_maintenance_records_the_meters(db: Db) {
    register(&db, "TRK-001").await;
    let t = tickets(db.clone()).with_meters(std::sync::Arc::new(FixedMeters));
    let m = t
        .raise(NewAlert {
            kind: TicketKind::Maintenance,
            priority: Priority::P3,
            ..fault("TRK-001", "engine-oil", t0())
        })
        .await
        .unwrap()
        .into_ticket();
    close(&t, m.id, t0()).await;
    let services = registry::vehicle_services(&db, &vehicle("TRK-001"))
        .await
        .unwrap();
    assert_eq!(services.len(), 1);
    // The intervals by meter restart from these readings.
    assert_eq!(
        (
            services[0].engine_hours,
            services[0].pto_hours,
            services[0].odometer_km
        ),
        (Some(1234.5), None, Some(48_211.0))
    );
}

async fn closing_records_the_service_or_repair(db: Db) {
    register(&db, "TRK-001").await;
    let t = tickets(db.clone());
    let maintenance = NewAlert {
        kind: TicketKind::Maintenance,
        priority: Priority::P3,
        ..fault("TRK-001", "engine-oil", t0())
    };
    let m = t.raise(maintenance).await.unwrap().into_ticket();
    let f = t
        .raise(fault("TRK-001", "110:0", t0()))
        .await
        .unwrap()
        .into_ticket();
    let at = DateTime::parse_from_rfc3339("2025-03-04T09:15:30.250Z")
        .unwrap()
        .with_timezone(&Utc);
    close(&t, m.id, at).await;
    close(&t, f.id, at).await;
    let services = registry::vehicle_services(&db, &vehicle("TRK-001"))
        .await
        .unwrap();
    let mut tasks: Vec<_> = services
        .iter()
        .map(|s| (s.task.clone(), s.performed_at.to_rfc3339(), s.source))
        .collect();
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    let when = "2025-03-04T09:15:30+00:00".to_owned();
    assert_eq!(
        tasks,
        [
            (
                ServiceTask::Maintenance(TaskId::new("engine-oil").unwrap()),
                when.clone(),
                ServiceSource::Ticket
            ),
            (
                ServiceTask::Repair {
                    spn: fleetcare_ingest::j1939::Spn::new(110).unwrap(),
                    fmi: fleetcare_ingest::j1939::Fmi::new(0).unwrap()
                },
                when,
                ServiceSource::Ticket
            ),
        ]
    );
    let (_, events) = t.get(f.id).await.unwrap().unwrap();
    assert_eq!(
        events.last().unwrap().note.as_deref(),
        Some("service repair:110:0 recorded")
    );

    // Other kinds record nothing; an unregistered truck's ticket still closes.
    let r = t
        .raise(NewAlert {
            kind: TicketKind::Recurring,
            ..fault("TRK-001", "91:3", t0())
        })
        .await
        .unwrap()
        .into_ticket();
    close(&t, r.id, at).await;
    assert_eq!(
        registry::vehicle_services(&db, &vehicle("TRK-001"))
            .await
            .unwrap()
            .len(),
        2
    );
    let u = t
        .raise(fault("TRK-404", "110:0", t0()))
        .await
        .unwrap()
        .into_ticket();
    assert_eq!(close(&t, u.id, at).await.state, TicketState::Closed);
    let (_, events) = t.get(u.id).await.unwrap().unwrap();
    assert_eq!(
        events.last().unwrap().note.as_deref(),
        Some("no service recorded: vehicle TRK-404 is not in the registry")
    );
}

async fn a_breach_is_reported_once(db: Db) {
    let t = tickets(db);
    // P1: respond within 1 h, resolve within 24 h.
    let late = t
        .raise(fault("TRK-001", "110:0", t0()))
        .await
        .unwrap()
        .into_ticket();
    let answered = t
        .raise(fault("TRK-002", "110:0", t0()))
        .await
        .unwrap()
        .into_ticket();
    t.transition(
        answered.id,
        Transition {
            assignee: Some("a".into()),
            outlet: Some("b".into()),
            ..Transition::to(TicketState::Dispatched)
        },
        "planner-1",
        minutes(30),
    )
    .await
    .unwrap();
    assert_eq!(late.sla.respond_by, minutes(60));
    assert_eq!(late.sla.resolve_by, minutes(24 * 60));

    assert!(t.check_slas(minutes(60)).await.unwrap().is_empty());
    let breached = t.check_slas(minutes(61)).await.unwrap();
    assert_eq!(breached.iter().map(|b| b.id).collect::<Vec<_>>(), [late.id]);
    assert!(breached[0].sla.breached);
    assert!(t.check_slas(minutes(62)).await.unwrap().is_empty());
    assert!(t.check_slas(minutes(24 * 60)).await.unwrap().is_empty());
    // The answered one misses its resolve deadline later, once.
    let breached = t.check_slas(minutes(24 * 60 + 1)).await.unwrap();
    assert_eq!(
        breached.iter().map(|b| b.id).collect::<Vec<_>>(),
        [answered.id]
    );
    assert!(t.check_slas(minutes(48 * 60)).await.unwrap().is_empty());

    let (ticket, events) = t.get(late.id).await.unwrap().unwrap();
    assert!(ticket.sla.breached);
    let breaches: Vec<_> = events.iter().filter(|e| e.kind == "breach").collect();
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].at, minutes(61));
    assert_eq!(
        breaches[0].note.as_deref(),
        Some("not answered by 2025-03-03T09:00:00.000000Z")
    );
    let (_, events) = t.get(answered.id).await.unwrap().unwrap();
    assert_eq!(
        events.last().unwrap().note.as_deref(),
        Some("not resolved by 2025-03-04T08:00:00.000000Z")
    );

    // A ticket answered late is a breach even if no check ran meanwhile.
    let slow = t
        .raise(fault("TRK-003", "110:0", minutes(100)))
        .await
        .unwrap()
        .into_ticket();
    t.transition(
        slow.id,
        Transition::to(TicketState::Cancelled),
        "planner-1",
        minutes(200),
    )
    .await
    .unwrap();
    let breached = t.check_slas(minutes(201)).await.unwrap();
    assert_eq!(breached.iter().map(|b| b.id).collect::<Vec<_>>(), [slow.id]);
}

async fn unanswered_complaints_are_escalated_once(db: Db) {
    let t = tickets(db);
    let complaint = t
        .create(
            TicketKind::Complaint,
            fleet("acme"),
            vehicle("TRK-001"),
            None,
            "hydraulics leak at the bin lift".into(),
            "phoned in by the depot manager".into(),
            "support-1",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(complaint.id, TicketId(1));
    assert_eq!(complaint.key, "1");
    assert_eq!(complaint.priority, Priority::P3);
    let answered = t
        .create(
            TicketKind::Complaint,
            fleet("acme"),
            vehicle("TRK-002"),
            None,
            "noise".into(),
            String::new(),
            "support-1",
            t0(),
        )
        .await
        .unwrap();
    t.transition(
        answered.id,
        Transition {
            assignee: Some("a".into()),
            outlet: Some("b".into()),
            ..Transition::to(TicketState::Dispatched)
        },
        "support-1",
        minutes(60),
    )
    .await
    .unwrap();
    let manual = t
        .create(
            TicketKind::Manual,
            fleet("acme"),
            vehicle("TRK-003"),
            None,
            "check mirrors".into(),
            String::new(),
            "support-1",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        (manual.kind, manual.key.as_str()),
        (TicketKind::Manual, "3")
    );

    assert!(t.check_slas(minutes(239)).await.unwrap().is_empty());
    let escalated = t.check_slas(minutes(240)).await.unwrap();
    assert_eq!(escalated.len(), 1);
    assert_eq!(
        (escalated[0].id, escalated[0].priority),
        (complaint.id, Priority::P2)
    );
    assert!(escalated[0].escalated);
    assert!(t.check_slas(minutes(300)).await.unwrap().is_empty());
    let (_, events) = t.get(complaint.id).await.unwrap().unwrap();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(kinds, [("opened", "support-1"), ("escalated", "fleetcare")]);
    assert_eq!(
        events[1].note.as_deref(),
        Some("not answered within 4h; priority raised to P2")
    );

    let e = t
        .create(
            TicketKind::Fault,
            fleet("acme"),
            vehicle("TRK-001"),
            None,
            "x".into(),
            String::new(),
            "support-1",
            t0(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, TicketError::NotCreatable(TicketKind::Fault)),
        "{e}"
    );
    let e = t
        .create(
            TicketKind::Complaint,
            fleet("acme"),
            vehicle("TRK-001"),
            None,
            "  ".into(),
            String::new(),
            "support-1",
            t0(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, TicketError::InvalidInput { field: "title", .. }),
        "{e}"
    );
}

async fn lists_filter_and_hide_other_fleets(db: Db) {
    let t = tickets(db);
    t.raise(fault("TRK-001", "110:0", t0())).await.unwrap();
    t.raise(NewAlert {
        fleet: Some(fleet("bravo")),
        ..fault("BRV-001", "110:0", t0())
    })
    .await
    .unwrap();
    t.raise(NewAlert {
        kind: TicketKind::BatchDefect,
        fleet: None,
        vehicle: None,
        ..fault("TRK-001", "110:0", t0())
    })
    .await
    .unwrap();
    let m = t
        .raise(NewAlert {
            kind: TicketKind::Maintenance,
            ..fault("TRK-001", "engine-oil", t0())
        })
        .await
        .unwrap()
        .into_ticket();
    t.transition(
        m.id,
        Transition::to(TicketState::Cancelled),
        "planner-1",
        t0(),
    )
    .await
    .unwrap();

    let ids = |tickets: Vec<Ticket>| tickets.into_iter().map(|t| t.id.0).collect::<Vec<_>>();
    let all = t.list(&TicketFilter::default()).await.unwrap();
    assert_eq!(ids(all), [4, 3, 2, 1]);
    let open = TicketFilter {
        state: Some(TicketState::Open),
        ..TicketFilter::default()
    };
    assert_eq!(ids(t.list(&open).await.unwrap()), [3, 2, 1]);
    let kind = TicketFilter {
        kind: Some(TicketKind::Maintenance),
        ..TicketFilter::default()
    };
    assert_eq!(ids(t.list(&kind).await.unwrap()), [4]);
    let by_fleet = TicketFilter {
        fleet: Some(fleet("bravo")),
        ..TicketFilter::default()
    };
    assert_eq!(ids(t.list(&by_fleet).await.unwrap()), [2]);
    let by_vehicle = TicketFilter {
        vehicle: Some(vehicle("TRK-001")),
        state: Some(TicketState::Open),
        ..TicketFilter::default()
    };
    assert_eq!(ids(t.list(&by_vehicle).await.unwrap()), [1]);
    let operator = TicketFilter {
        fleets_visible: Some(vec![fleet("acme")]),
        ..TicketFilter::default()
    };
    assert_eq!(ids(t.list(&operator).await.unwrap()), [4, 1]);
    let nobody = TicketFilter {
        fleets_visible: Some(Vec::new()),
        ..TicketFilter::default()
    };
    assert!(t.list(&nobody).await.unwrap().is_empty());
    let snooping = TicketFilter {
        fleet: Some(fleet("bravo")),
        fleets_visible: Some(vec![fleet("acme")]),
        ..TicketFilter::default()
    };
    assert!(t.list(&snooping).await.unwrap().is_empty());
    assert!(t.get(TicketId(5)).await.unwrap().is_none());
}

/// Issue 20, finding 4: `GET /tickets` had no pages. Pages by ticket
/// number, newest first, neither repeat nor skip a ticket when others are
/// opened between them; counts per state and open tickets per vehicle
/// answer the board and the overview without listing every ticket.
async fn pages_counts_and_open_tickets_per_vehicle(db: Db) {
    let t = tickets(db);
    for i in 0..5 {
        t.raise(fault("TRK-001", &format!("{i}:0"), t0()))
            .await
            .unwrap();
    }
    t.raise(NewAlert {
        fleet: Some(fleet("bravo")),
        ..fault("BRV-001", "110:0", t0())
    })
    .await
    .unwrap();
    t.transition(
        TicketId(2),
        Transition::to(TicketState::Cancelled),
        "s",
        t0(),
    )
    .await
    .unwrap();
    let ids = |tickets: &[Ticket]| tickets.iter().map(|t| t.id.0).collect::<Vec<_>>();
    let all = TicketFilter::default();
    let first = t.list_page(&all, None, 2).await.unwrap();
    assert_eq!(ids(&first), [6, 5]);
    // Opened between the pages: above the position, not in the walk.
    t.raise(fault("TRK-001", "99:0", t0())).await.unwrap();
    let second = t.list_page(&all, Some(TicketId(5)), 2).await.unwrap();
    assert_eq!(ids(&second), [4, 3]);
    let last = t.list_page(&all, Some(TicketId(3)), 2).await.unwrap();
    assert_eq!(ids(&last), [2, 1]);
    assert!(
        t.list_page(&all, Some(TicketId(1)), 2)
            .await
            .unwrap()
            .is_empty()
    );
    let acme = TicketFilter {
        fleets_visible: Some(vec![fleet("acme")]),
        state: Some(TicketState::Open),
        ..TicketFilter::default()
    };
    assert_eq!(
        ids(&t.list_page(&acme, Some(TicketId(7)), 10).await.unwrap()),
        [5, 4, 3, 1]
    );

    let mut counts = t.count_by_state(&all).await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        [(TicketState::Open, 6), (TicketState::Cancelled, 1)]
    );
    let operator = TicketFilter {
        fleets_visible: Some(vec![fleet("bravo")]),
        ..TicketFilter::default()
    };
    assert_eq!(
        t.count_by_state(&operator).await.unwrap(),
        [(TicketState::Open, 1)]
    );
    let nobody = TicketFilter {
        fleets_visible: Some(Vec::new()),
        ..TicketFilter::default()
    };
    assert!(t.count_by_state(&nobody).await.unwrap().is_empty());

    let mut open = t.open_per_vehicle(&all).await.unwrap();
    open.sort();
    assert_eq!(
        open,
        [
            (fleet("acme"), vehicle("TRK-001"), 5),
            (fleet("bravo"), vehicle("BRV-001"), 1)
        ]
    );
    assert_eq!(
        t.open_per_vehicle(&operator).await.unwrap(),
        [(fleet("bravo"), vehicle("BRV-001"), 1)]
    );
}

async fn tickets_serialize_with_the_c7_fields(db: Db) {
    let t = tickets(db);
    let ticket = t
        .raise(fault("TRK-001", "110:0", t0()))
        .await
        .unwrap()
        .into_ticket();
    let (ticket, events) = t.get(ticket.id).await.unwrap().unwrap();
    let json = serde_json::to_value(TicketWithEvents {
        ticket,
        events,
        outlet_proposed: None,
    })
    .unwrap();
    for field in [
        "id",
        "fleet",
        "vehicle",
        "model",
        "kind",
        "key",
        "state",
        "priority",
        "title",
        "created_at",
        "updated_at",
        "occurrences",
        "sla",
        "events",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
    assert_eq!(json["id"], 1);
    assert_eq!(json["kind"], "fault");
    assert_eq!(json["state"], "open");
    assert_eq!(json["priority"], "P1");
    assert_eq!(json["key"], "110:0");
    assert_eq!(json["sla"]["respond_by"], "2025-03-03T09:00:00Z");
    assert_eq!(json["sla"]["breached"], false);
    assert_eq!(json["events"][0]["kind"], "opened");
    assert_eq!(json["events"][0]["to"], "open");
    // No catalogue: nothing can be said about the warranty.
    assert_eq!(
        json["warranty"],
        serde_json::json!({"status": "unknown", "until": null, "basis": null})
    );
}

/// Engine hours and km a vehicle reports, per vehicle id.
#[derive(Debug)]
struct HoursOf;

impl super::MeterSource for HoursOf {
    fn readings(&self, _: &FleetId, v: &VehicleId) -> super::MeterReadings {
        let engine_hours = match v.as_str() {
            "IN-1" => Some(3900.0),
            "OUT-1" => Some(4100.0),
            _ => None,
        };
        super::MeterReadings {
            engine_hours,
            pto_hours: None,
            odometer_km: engine_hours.map(|h| h * 10.0),
        }
    }
}

/// Issue 21 acceptance (at the ticket store): 20 months and 3,900 h are
/// in warranty, 4,100 h out on engine hours; closing claims the covered
/// part and the labour, never the excluded wear part.
async fn warranty_is_decided_at_intake_and_claimed_at_closing(db: Db) {
    use TicketState::*;
    let catalog = std::sync::Arc::new(
        crate::catalog::Catalog::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        )
        .unwrap(),
    );
    let t = tickets(db.clone())
        .with_catalog(catalog)
        .with_meters(std::sync::Arc::new(HoursOf));
    // 20 months before t0 (2025-03-03).
    for v in ["IN-1", "OUT-1", "NOMETER-1"] {
        sqlx::query(
            "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
             VALUES ($1, 'acme', 'compactor-c12', NULL, '2023-07-03', 'north')",
        )
        .bind(v)
        .execute(db.pool())
        .await
        .unwrap();
    }
    let open = |v: &'static str| {
        let t = t.clone();
        async move {
            t.raise(fault(v, "110:0", t0()))
                .await
                .unwrap()
                .into_ticket()
        }
    };
    let inside = open("IN-1").await;
    assert_eq!(
        serde_json::to_value(inside.warranty).unwrap(),
        serde_json::json!({"status": "in", "until": "2025-07-03", "basis": "engine_hours"})
    );
    let outside = open("OUT-1").await;
    assert_eq!(
        serde_json::to_value(outside.warranty).unwrap(),
        serde_json::json!({"status": "out", "until": null, "basis": "engine_hours"})
    );
    assert_eq!(
        open("NOMETER-1").await.warranty.status,
        crate::catalog::WarrantyStatus::Unknown
    );
    // An occurrence keeps the intake decision.
    let again = t.raise(fault("IN-1", "110:0", minutes(1))).await.unwrap();
    assert!(matches!(again, Raised::Occurrence(_)));

    let walk = [Dispatched, Diagnosing, InRepair, QualityCheck, Delivered];
    for ticket in [&inside, &outside] {
        for (i, to) in walk.iter().enumerate() {
            t.transition(
                ticket.id,
                Transition {
                    assignee: Some("Li".into()),
                    outlet: Some("north".into()),
                    ..Transition::to(*to)
                },
                "support",
                minutes(10 + i as i64),
            )
            .await
            .unwrap();
        }
        let closed = t
            .transition(
                ticket.id,
                Transition {
                    satisfaction: Some(5),
                    outcome: Some(Outcome::PartReplaced),
                    labour_hours: Some(3.0),
                    parts_used: vec![("THERMO-01".into(), 1), ("COOLANT-L".into(), 20)],
                    ..Transition::to(Closed)
                },
                "support",
                minutes(30),
            )
            .await
            .unwrap();
        let covered: Vec<_> = closed.parts_used.iter().map(|p| p.covered).collect();
        if ticket.id == inside.id {
            // Coolant is a fluid: excluded; the thermostat is claimed.
            assert_eq!(covered, [Some(true), Some(false)]);
            assert_eq!(closed.labour_covered, Some(true));
            let (_, events) = t.get(ticket.id).await.unwrap().unwrap();
            let note = events.last().unwrap().note.clone().unwrap();
            assert!(
                note.contains("; warranty: THERMO-01 and labour claimed;"),
                "{note}"
            );
        } else {
            assert_eq!(covered, [Some(false), Some(false)]);
            assert_eq!(closed.labour_covered, Some(false));
        }
    }
}

/// C10: once the register has outlets, dispatch names one of them; the
/// outlet serving the vehicle's depot gives the ticket's zone.
async fn dispatch_names_a_registered_outlet(db: Db) {
    use TicketState::*;
    register(&db, "TRK-001").await;
    let t = tickets(db.clone());
    let a = t
        .raise(fault("TRK-001", "110:0", t0()))
        .await
        .unwrap()
        .into_ticket();
    // No register yet: any name, and no zone.
    assert_eq!(t.outlet_zone(&a).await.unwrap(), None);
    sqlx::query(
        "INSERT INTO outlets (outlet_id, name, kind, zone, phone) VALUES \
         ('OUT-N', 'North workshop', 'own', 'rural', NULL), \
         ('OUT-P', 'Partner north', 'partner', 'city', NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outlet_depots (outlet_id, depot) VALUES ('OUT-N', 'north'), ('OUT-P', 'north')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    // The own workshop serving the depot is proposed.
    assert_eq!(
        t.outlet_zone(&a).await.unwrap(),
        Some(crate::registry::Zone::Rural)
    );
    let dispatch = |outlet: &str| Transition {
        assignee: Some("Wang Lei".into()),
        outlet: Some(outlet.into()),
        ..Transition::to(Dispatched)
    };
    let e = t
        .transition(a.id, dispatch("north workshop"), "support", minutes(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, TicketError::UnknownOutlet { outlet } if outlet == "north workshop"),
        "{e}"
    );
    assert!(e.is_client_error());
    let moved = t
        .transition(a.id, dispatch("OUT-P"), "support", minutes(2))
        .await
        .unwrap();
    assert_eq!(moved.outlet.as_deref(), Some("OUT-P"));
    assert_eq!(
        t.outlet_zone(&moved).await.unwrap(),
        Some(crate::registry::Zone::City)
    );
}

db_tests!(multi_thread: one_hundred_simultaneous_alerts_make_one_ticket);
db_tests!(
    duplicates_are_per_vehicle_kind_and_key,
    an_alert_after_closing_opens_a_new_ticket,
    moves_are_checked_and_recorded,
    closing_records_the_service_or_repair,
    closing_maintenance_records_the_meters,
    a_breach_is_reported_once,
    unanswered_complaints_are_escalated_once,
    lists_filter_and_hide_other_fleets,
    pages_counts_and_open_tickets_per_vehicle,
    tickets_serialize_with_the_c7_fields,
    warranty_is_decided_at_intake_and_claimed_at_closing,
    dispatch_names_a_registered_outlet,
);
