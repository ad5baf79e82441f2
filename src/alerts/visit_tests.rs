//! Service visits through the periodic jobs against real databases
//! (SQLite, and PostgreSQL when `FLEETCARE_TEST_POSTGRES_URL` is set):
//! issue 21, item 11.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{TimeDelta, Utc};

use super::notify::spawn_notifier;
use super::service::{AlertContext, run_jobs};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::db::testing::db_tests;
use crate::registry::{ServiceHistory, ServiceSource, ServiceTask};
use crate::runtime::LiveMetrics;
use crate::tickets::{
    Ticket, TicketFilter, TicketKind, TicketState, Tickets, Transition, VISIT_KEY, VisitReason,
};

db_tests!(
    one_visit_lists_every_task_due_and_closing_restarts_the_tasks_done,
    tasks_falling_due_within_the_pull_in_window_join_the_visit,
);

/// Day intervals only, so the store needs no meters: commissioned 95 days
/// ago, `soon-*` (100 days, due soon within 14) are due soon, `late`
/// (90 days) is overdue, `later` (365 days) is far off, and `pulled`
/// (120 days, due soon within 5) falls due in 25 days.
const MODEL: &str = r#"
id = "visit-t"
name = "Visit test truck"
kind = "sweeper"

[[maintenance]]
task = "soon-a"
name = "Soon A"
every_days = 100
due_soon_days = 14

[[maintenance]]
task = "soon-b"
name = "Soon B"
every_days = 100
due_soon_days = 14

[[maintenance]]
task = "soon-c"
name = "Soon C"
every_days = 100
due_soon_days = 14

[[maintenance]]
task = "late"
name = "Late"
every_days = 90
due_soon_days = 14

[[maintenance]]
task = "later"
name = "Later"
every_days = 365
due_soon_days = 14
"#;

const PULLED: &str = r#"
[[maintenance]]
task = "pulled"
name = "Pulled in"
every_days = 120
due_soon_days = 5
"#;

const PARTS: &str = r#"
[[part]]
id = "OIL"
name = "Engine oil"
unit = "L"
lead_time_days = 2
"#;

/// A catalogue of the test model (with `pulled` when asked), a vehicle
/// V1 of fleet acme commissioned 95 days ago, and the jobs' context.
struct Setup {
    _dir: tempfile::TempDir,
    ctx: AlertContext,
    delivered: tokio::task::JoinHandle<()>,
}

async fn setup(db: &Db, with_pulled: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let model = if with_pulled {
        format!("{MODEL}{PULLED}")
    } else {
        MODEL.to_owned()
    };
    std::fs::write(models.join("visit-t.toml"), model).unwrap();
    std::fs::write(models.join("parts.toml"), PARTS).unwrap();
    let catalog = Arc::new(Catalog::load(&models).unwrap());
    let commissioned = (Utc::now() - TimeDelta::days(95)).date_naive();
    let csv = dir.path().join("vehicles.csv");
    std::fs::write(
        &csv,
        format!(
            "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\nV1,acme,visit-t,,{commissioned},north\n"
        ),
    )
    .unwrap();
    crate::registry::import_vehicles(db, &catalog, &csv)
        .await
        .unwrap();
    let config = Arc::new(Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    });
    let metrics = Arc::new(LiveMetrics::default());
    let (notifier, delivered) = spawn_notifier(
        db.clone(),
        None,
        super::tests::notify_config(),
        metrics.clone(),
    );
    let store = Arc::new(crate::store::StoreReader::new(
        &config.data_dir,
        config.pipeline(),
    ));
    let ctx = AlertContext {
        db: db.clone(),
        tickets: Tickets::new(db.clone(), config.sla.clone()),
        catalog,
        config,
        notifier,
        metrics,
        models: Arc::new(RwLock::new(HashMap::new())),
        store,
    };
    Setup {
        _dir: dir,
        ctx,
        delivered,
    }
}

async fn open_visits(tickets: &Tickets) -> Vec<Ticket> {
    tickets
        .list(&TicketFilter {
            kind: Some(TicketKind::Maintenance),
            ..TicketFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|t| !t.state.is_finished())
        .collect()
}

async fn tasks_of(tickets: &Tickets, t: &Ticket) -> Vec<(String, VisitReason)> {
    tickets
        .visit_tasks(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.task.to_string(), v.status))
        .collect()
}

/// Moves `t` from open to delivered, then closes it with `done`.
async fn close(tickets: &Tickets, t: &Ticket, done: Option<Vec<String>>) -> Ticket {
    let now = Utc::now();
    for to in [
        TicketState::Dispatched,
        TicketState::Diagnosing,
        TicketState::InRepair,
        TicketState::QualityCheck,
        TicketState::Delivered,
    ] {
        let mut m = Transition::to(to);
        m.assignee = Some("Wang Lei".into());
        m.outlet = Some("north workshop".into());
        tickets.transition(t.id, m, "test", now).await.unwrap();
    }
    let mut m = Transition::to(TicketState::Closed);
    m.satisfaction = Some(5);
    m.tasks_done = done;
    tickets.transition(t.id, m, "test", now).await.unwrap()
}

/// Issue 21, item 11 acceptance: three tasks due soon and one overdue are
/// one open maintenance ticket listing the four; closing it with two tasks
/// done restarts exactly those two intervals.
async fn one_visit_lists_every_task_due_and_closing_restarts_the_tasks_done(db: Db) {
    let s = setup(&db, false).await;
    let tickets = s.ctx.tickets.clone();
    // Twice: the second run counts an occurrence on the same visit.
    run_jobs(&s.ctx).await.unwrap();
    run_jobs(&s.ctx).await.unwrap();
    let visits = open_visits(&tickets).await;
    assert_eq!(visits.len(), 1, "{visits:?}");
    let visit = &visits[0];
    assert_eq!(visit.key, VISIT_KEY);
    assert_eq!(visit.occurrences, 2);
    assert_eq!(visit.priority.as_str(), "P2", "a task is overdue");
    assert!(
        visit.title.starts_with("V1: service visit, 4 tasks"),
        "{}",
        visit.title
    );
    assert_eq!(
        tasks_of(&tickets, visit).await,
        [
            ("late".to_owned(), VisitReason::Overdue),
            ("soon-a".to_owned(), VisitReason::DueSoon),
            ("soon-b".to_owned(), VisitReason::DueSoon),
            ("soon-c".to_owned(), VisitReason::DueSoon),
        ]
    );

    let closed = close(
        &tickets,
        visit,
        Some(vec!["soon-a".to_owned(), "late".to_owned()]),
    )
    .await;
    assert_eq!(closed.state, TicketState::Closed);
    let done: Vec<(String, Option<bool>)> = tickets
        .visit_tasks(visit.id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.task.to_string(), v.done))
        .collect();
    assert_eq!(
        done,
        [
            ("late".to_owned(), Some(true)),
            ("soon-a".to_owned(), Some(true)),
            ("soon-b".to_owned(), Some(false)),
            ("soon-c".to_owned(), Some(false)),
        ]
    );
    let registry =
        crate::report::Registry::load(&db, Utc::now(), ServiceHistory::LastServicesAndRepairs)
            .await
            .unwrap();
    let mut recorded: Vec<String> = registry
        .services
        .iter()
        .filter(|r| r.source == ServiceSource::Ticket)
        .map(|r| match &r.task {
            ServiceTask::Maintenance(t) => t.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    recorded.sort();
    assert_eq!(recorded, ["late", "soon-a"]);

    // Exactly those two restarted: the next run's visit lists the other two.
    run_jobs(&s.ctx).await.unwrap();
    let visits = open_visits(&tickets).await;
    assert_eq!(visits.len(), 1, "{visits:?}");
    assert_ne!(visits[0].id, visit.id);
    assert_eq!(
        tasks_of(&tickets, &visits[0]).await,
        [
            ("soon-b".to_owned(), VisitReason::DueSoon),
            ("soon-c".to_owned(), VisitReason::DueSoon),
        ]
    );
    assert_eq!(visits[0].priority.as_str(), "P3");
    // Closing with no task named does them all.
    close(&tickets, &visits[0], None).await;
    run_jobs(&s.ctx).await.unwrap();
    assert!(open_visits(&tickets).await.is_empty());
    drop(s.ctx);
    s.delivered.await.unwrap();
}

/// A task falling due within the pull-in window (30 days by default)
/// joins a visit that other tasks opened — and opens none by itself.
async fn tasks_falling_due_within_the_pull_in_window_join_the_visit(db: Db) {
    let s = setup(&db, true).await;
    let tickets = s.ctx.tickets.clone();
    run_jobs(&s.ctx).await.unwrap();
    let visits = open_visits(&tickets).await;
    assert_eq!(visits.len(), 1);
    let tasks = tasks_of(&tickets, &visits[0]).await;
    assert!(
        tasks.contains(&("pulled".to_owned(), VisitReason::PullIn)),
        "{tasks:?}"
    );
    assert!(!tasks.iter().any(|(t, _)| t == "later"), "{tasks:?}");
    assert_eq!(tasks.len(), 5);
    // Naming a task the visit does not list is refused.
    let mut m = Transition::to(TicketState::Cancelled);
    m.tasks_done = Some(vec!["later".to_owned()]);
    let e = tickets
        .transition(visits[0].id, m, "test", Utc::now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("tasks_done"), "{e}");
    drop(s.ctx);
    s.delivered.await.unwrap();
}
