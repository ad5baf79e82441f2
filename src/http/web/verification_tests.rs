//! The ticket page shows repair verification (issue 21 item 10): the
//! verdict on a delivered repair, and on a repeat repair the earlier
//! ticket with its technician and outlet, in English and Chinese.

use chrono::{TimeDelta, TimeZone, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};

use crate::catalog::ModelId;
use crate::db::Db;
use crate::db::testing::db_tests;
use crate::http::api::Role;
use crate::http::testing::{call, page, register, sign_in, state, text, token};
use crate::tickets::{NewAlert, Priority, TicketKind, TicketState, Tickets, Transition};

db_tests!(the_ticket_page_shows_the_verdict_and_the_repeat_link);

async fn the_ticket_page_shows_the_verdict_and_the_repeat_link(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    register(&db, &[("fa", "A1")]).await;
    let tickets = Tickets::new(db.clone(), Default::default());
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let alert = |kind| NewAlert {
        kind,
        fleet: Some(FleetId::new("fa").unwrap()),
        vehicle: Some(VehicleId::new("A1").unwrap()),
        model: Some(ModelId::new("compactor-c12").unwrap()),
        key: "110:0".into(),
        priority: Priority::P2,
        title: "A1: coolant temperature".into(),
        details: "SPN 110 FMI 0".into(),
        at: t0,
    };
    let fault = tickets
        .raise(alert(TicketKind::Fault))
        .await
        .unwrap()
        .into_ticket();
    use TicketState::*;
    for to in [Dispatched, Diagnosing, InRepair, QualityCheck, Delivered] {
        let step = Transition {
            assignee: (to == Dispatched).then(|| "Li Wei".to_owned()),
            outlet: (to == Dispatched).then(|| "OUT-N".to_owned()),
            ..Transition::to(to)
        };
        tickets
            .transition(fault.id, step, "planner", t0)
            .await
            .unwrap();
    }
    let app = crate::http::app(state(db.clone(), dir.path()));
    let session = sign_in(&app, &token(&db, Role::Support, &[]).await).await;
    let html = text(call(&app, page(&format!("/ui/tickets/{}", fault.id), &session)).await).await;
    assert!(html.contains(r#"data-verification="watching""#), "{html}");

    let repeat = tickets
        .raise(alert(TicketKind::RepeatRepair))
        .await
        .unwrap()
        .into_ticket();
    let back = t0 + TimeDelta::days(6);
    let link = tickets
        .link_repeat(repeat.id, back, TimeDelta::days(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.ticket, fault.id);
    // Linked once: a second call changes nothing.
    assert_eq!(
        tickets
            .link_repeat(repeat.id, back, TimeDelta::days(30))
            .await
            .unwrap(),
        None
    );
    let html = text(call(&app, page(&format!("/ui/tickets/{}", fault.id), &session)).await).await;
    assert!(html.contains(r#"data-verification="repeated""#), "{html}");
    assert!(
        html.contains("not held: the code came back · 2026-03-08"),
        "{html}"
    );
    let html = text(call(&app, page(&format!("/ui/tickets/{}", repeat.id), &session)).await).await;
    assert!(
        html.contains(&format!(r#"<a href="/ui/tickets/{0}">#{0}</a>"#, fault.id)),
        "{html}"
    );
    assert!(html.contains("Li Wei"), "{html}");
    assert!(html.contains("OUT-N"), "{html}");
    assert!(
        html.contains(&format!("Repeat of ticket #{}", fault.id)),
        "the details name it too: {html}"
    );

    // Issue 21 item 9: a zh-CN reader sees the fault's title in Chinese,
    // from the ticket's facts, on the board, the ticket page and the
    // vehicle page; an English reader the stored title.
    let zh_page = |path: &str| {
        axum::http::Request::get(path)
            .header(
                axum::http::header::COOKIE,
                format!("fleetcare_session={session}; fleetcare_lang=zh-CN"),
            )
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let title_zh = "A1：发动机冷却液温度过高（最严重）";
    for path in [
        format!("/ui/tickets/{}", fault.id),
        "/ui/tickets".to_owned(),
        "/ui/vehicles/A1".to_owned(),
    ] {
        let html = text(call(&app, zh_page(&path)).await).await;
        assert!(html.contains(title_zh), "{path}: {html}");
        let html = text(call(&app, page(&path, &session)).await).await;
        assert!(!html.contains(title_zh), "{path}: {html}");
        assert!(html.contains("A1: coolant temperature"), "{path}: {html}");
    }
}
