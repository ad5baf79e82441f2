//! Pages of a list (C14; issue 20, finding 4): every list endpoint takes
//! `limit` (default 100, 1 to 1000) and an opaque `cursor`, and says how to
//! get the next page in its headers, the body staying the JSON array it
//! always was:
//!
//! ```text
//! Link: </api/v1/tickets?state=open&limit=100&cursor=74…>; rel="next"
//! X-Next-Cursor: 74…
//! ```
//!
//! Neither header on the last page. Cursors are keyset positions (the key
//! of the last row returned: ticket id, `(fleet, vehicle)`, `(at, alert
//! id)`, `(received, rows of that instant already returned)`), so a page
//! neither repeats nor skips rows when rows are added between requests:
//! new ones sort before the position (newest first) or are placed by
//! their key. A cursor of another list, or one that was not made here, is
//! a 400.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiQuery};
use crate::tickets::TicketId;

/// Rows a page has unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The most rows one page may have.
pub(crate) const MAX_LIMIT: usize = 1000;
/// The longest cursor accepted (ours are far shorter).
const MAX_CURSOR: usize = 1024;
/// The header that carries the next page's cursor alone.
pub(crate) const NEXT_CURSOR: &str = "x-next-cursor";

/// The key of a row in a list's order, which a cursor carries.
pub(crate) trait CursorKey: Sized {
    /// Tells the lists' cursors apart.
    const KIND: char;
    fn write(&self) -> String;
    fn read(text: &str) -> Option<Self>;
}

/// The opaque text of a cursor at `key`.
pub(crate) fn encode<K: CursorKey>(key: &K) -> String {
    crate::runtime::secret::hex(format!("{}{}", K::KIND, key.write()).as_bytes())
}

/// The key of a cursor of kind `K`; `None` for anything else.
pub(crate) fn decode<K: CursorKey>(cursor: &str) -> Option<K> {
    if cursor.len() > MAX_CURSOR || !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return None;
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let text = String::from_utf8(bytes).ok()?;
    K::read(text.strip_prefix(K::KIND)?)
}

impl CursorKey for TicketId {
    const KIND: char = 't';
    fn write(&self) -> String {
        self.0.to_string()
    }
    fn read(text: &str) -> Option<Self> {
        text.parse::<i64>().ok().filter(|n| *n > 0).map(TicketId)
    }
}

/// A vehicle's place in the registry's order (fleet, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VehicleKey {
    pub(crate) fleet: FleetId,
    pub(crate) vehicle: VehicleId,
}

impl CursorKey for VehicleKey {
    const KIND: char = 'v';
    fn write(&self) -> String {
        // Ids have no '/'.
        format!("{}/{}", self.fleet.as_str(), self.vehicle.as_str())
    }
    fn read(text: &str) -> Option<Self> {
        let (fleet, vehicle) = text.split_once('/')?;
        Some(Self {
            fleet: FleetId::new(fleet).ok()?,
            vehicle: VehicleId::new(vehicle).ok()?,
        })
    }
}

/// An alert's place in the alert log's order (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlertKey {
    /// As stored: fixed-width RFC 3339 UTC.
    pub(crate) at: String,
    pub(crate) id: String,
}

impl CursorKey for AlertKey {
    const KIND: char = 'a';
    fn write(&self) -> String {
        // A time has no '/'; an alert id may.
        format!("{}/{}", self.at, self.id)
    }
    fn read(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('/')?;
        chrono::DateTime::parse_from_rfc3339(at).ok()?;
        Some(Self {
            at: at.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// A dead letter's place in the newest-first order: its receipt time and
/// how many rows of that same instant (one message's, stored together)
/// came before it, in their fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeadLetterKey {
    pub(crate) received_us: i64,
    pub(crate) skip: usize,
}

impl CursorKey for DeadLetterKey {
    const KIND: char = 'd';
    fn write(&self) -> String {
        format!("{}/{}", self.received_us, self.skip)
    }
    fn read(text: &str) -> Option<Self> {
        let (received, skip) = text.split_once('/')?;
        Some(Self {
            received_us: received.parse().ok()?,
            skip: skip.parse().ok()?,
        })
    }
}

#[derive(Debug, Deserialize)]
struct RawPage {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `limit` and `cursor` of a list request, and where it was sent (for the
/// next page's link).
#[derive(Debug, Clone)]
pub(crate) struct PageParams {
    pub(crate) limit: usize,
    cursor: Option<String>,
    path: String,
    /// The query's other parameters, as sent.
    query: Vec<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ApiQuery(raw) = ApiQuery::<RawPage>::from_request_parts(parts, state).await?;
        let limit = match raw.limit.map(|n| n as usize) {
            None => DEFAULT_LIMIT,
            Some(n @ 1..=MAX_LIMIT) => n,
            Some(n) => {
                return Err(ApiError::BadRequest(format!(
                    "limit {n} is out of range; give 1 to {MAX_LIMIT}"
                )));
            }
        };
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path(), MatchedPath::as_str)
            .to_owned();
        let query = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| pair.split('=').next() != Some("cursor"))
            .map(str::to_owned)
            .collect();
        Ok(Self {
            limit,
            cursor: raw.cursor,
            path,
            query,
        })
    }
}

impl PageParams {
    /// The first page of `limit` rows of any list.
    #[cfg(test)]
    pub(crate) fn first(limit: usize) -> Self {
        Self {
            limit,
            cursor: None,
            path: String::new(),
            query: Vec::new(),
        }
    }

    /// The position the request's cursor names; 400 for a cursor that is
    /// not one of this list's.
    pub(crate) fn after<K: CursorKey>(&self) -> Result<Option<K>, ApiError> {
        self.cursor
            .as_deref()
            .map(|c| {
                decode::<K>(c).ok_or_else(|| {
                    ApiError::BadRequest(
                        "cursor is not one this list gave; start again without it".to_owned(),
                    )
                })
            })
            .transpose()
    }

    /// How many rows to fetch: one more than the page, to know whether
    /// another page follows.
    pub(crate) fn fetch(&self) -> usize {
        self.limit + 1
    }

    /// Cuts `rows` (fetched with [`Self::fetch`]) to the page; the rows and
    /// the next page's cursor (`None` on the last page), made by `next`
    /// from the page's rows.
    pub(crate) fn cut<T, K: CursorKey>(
        &self,
        mut rows: Vec<T>,
        next: impl FnOnce(&[T]) -> Option<K>,
    ) -> (Vec<T>, Option<String>) {
        if rows.len() <= self.limit {
            return (rows, None);
        }
        rows.truncate(self.limit);
        let cursor = next(&rows).map(|k| encode(&k));
        (rows, cursor)
    }

    /// The JSON array of the page, with `Link` and `X-Next-Cursor` when
    /// another page follows.
    pub(crate) fn respond<T: Serialize>(&self, rows: Vec<T>, next: Option<String>) -> Response {
        let mut response = axum::Json(rows).into_response();
        if let Some(cursor) = next {
            let mut query = self.query.clone();
            query.push(format!("cursor={cursor}"));
            let link = format!("<{}?{}>; rel=\"next\"", self.path, query.join("&"));
            let h = response.headers_mut();
            if let (Ok(link), Ok(cursor)) = (HeaderValue::from_str(&link), cursor.parse()) {
                h.insert(header::LINK, link);
                h.insert(NEXT_CURSOR, cursor);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_one_list() {
        let t = TicketId(42);
        assert_eq!(decode::<TicketId>(&encode(&t)), Some(t));
        let v = VehicleKey {
            fleet: FleetId::new("fa").unwrap(),
            vehicle: VehicleId::new("A-1.x").unwrap(),
        };
        assert_eq!(decode::<VehicleKey>(&encode(&v)), Some(v.clone()));
        let a = AlertKey {
            at: "2026-03-02T08:00:00.000000Z".to_owned(),
            id: "odd/id".to_owned(),
        };
        assert_eq!(decode::<AlertKey>(&encode(&a)), Some(a));
        let d = DeadLetterKey {
            received_us: -5,
            skip: 3,
        };
        assert_eq!(decode::<DeadLetterKey>(&encode(&d)), Some(d));
        // Another list's cursor, and what no list gave.
        assert_eq!(decode::<TicketId>(&encode(&v)), None);
        assert_eq!(decode::<VehicleKey>(&encode(&t)), None);
        for junk in ["", "zz", "7", "74", "7430", &"74".repeat(600), "ü"] {
            assert_eq!(decode::<TicketId>(junk), None, "{junk}");
        }
        assert_eq!(
            decode::<TicketId>(&crate::runtime::secret::hex(b"t-1")),
            None
        );
        assert_eq!(
            decode::<AlertKey>(&crate::runtime::secret::hex(b"ayesterday/x")),
            None
        );
    }

    #[test]
    fn a_page_is_cut_from_one_row_more() {
        let p = PageParams::first(2);
        assert_eq!(p.fetch(), 3);
        let (rows, next) = p.cut(vec![9, 8, 7], |rows: &[i64]| {
            rows.last().map(|n| TicketId(*n))
        });
        assert_eq!(rows, [9, 8]);
        assert_eq!(next.and_then(|c| decode::<TicketId>(&c)), Some(TicketId(8)));
        let (rows, next) = p.cut(vec![9, 8], |rows: &[i64]| rows.last().map(|n| TicketId(*n)));
        assert_eq!((rows.len(), next), (2, None));
    }
}

/// Walking the API's lists page by page through `app().oneshot` (issue
/// 20, finding 4: `GET /api/v1/tickets` returned 2.95 MB, no pages).
#[cfg(test)]
mod walks {
    use axum::Router;
    use axum::http::{StatusCode, header};
    use serde_json::{Value, json};

    use super::NEXT_CURSOR;
    use crate::db::Db;
    use crate::http::api::Role;
    use crate::http::testing::{call, get, json, post_json, register, state, token};

    /// One page: its rows and the next page's address from `Link`.
    async fn page(app: &Router, path: &str, token: &str) -> (Vec<Value>, Option<String>) {
        let r = call(app, get(path, Some(token))).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        let link = h.get(header::LINK).map(|l| l.to_str().unwrap().to_owned());
        let cursor = h.get(NEXT_CURSOR).map(|c| c.to_str().unwrap().to_owned());
        let next = link.map(|l| {
            let url = l
                .strip_prefix('<')
                .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                .unwrap_or_else(|| panic!("{l}"))
                .to_owned();
            assert!(
                url.ends_with(&format!("cursor={}", cursor.clone().unwrap())),
                "{url}"
            );
            url
        });
        assert_eq!(next.is_some(), cursor.is_some(), "{path}");
        let rows = json(r).await.as_array().unwrap().clone();
        (rows, next)
    }

    async fn complaint(app: &Router, token: &str, vehicle: &str) -> i64 {
        let body = json!({"vehicle": vehicle, "kind": "complaint", "title": "Noise"});
        let r = call(app, post_json("/api/v1/tickets", token, &body)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        json(r).await["id"].as_i64().unwrap()
    }

    async fn alert(db: &Db, id: &str, at: &str, fleet: &str) {
        sqlx::query(
            "INSERT INTO alerts (alert_id, at, fleet_id, vehicle_id, kind, ticket_id, title, body) \
             VALUES ($1, $2, $3, NULL, 'critical_fault', NULL, 't', '{}')",
        )
        .bind(id)
        .bind(at)
        .bind(fleet)
        .execute(db.pool())
        .await
        .unwrap();
    }

    async fn pages_walk_every_list_without_repeats_or_gaps(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        register(
            &db,
            &[
                ("fa", "A1"),
                ("fa", "A2"),
                ("fa", "A4"),
                ("fb", "B1"),
                ("fb", "B2"),
            ],
        )
        .await;
        let app = crate::http::app(state(db.clone(), dir.path()));
        let support = token(&db, Role::Support, &[]).await;
        let operator = token(&db, Role::Operator, &["fa"]).await;

        // Tickets, newest first, 2 a page, with one opened between pages.
        let mut before = Vec::new();
        for v in ["A1", "B1", "A2", "B2", "A1"] {
            before.push(complaint(&app, &support, v).await);
        }
        before.reverse();
        let mut seen = Vec::new();
        let mut next = Some("/api/v1/tickets?kind=complaint&limit=2".to_owned());
        let mut pages = 0;
        while let Some(path) = next {
            let (rows, after) = page(&app, &path, &support).await;
            assert!(rows.len() <= 2);
            seen.extend(rows.iter().map(|t| t["id"].as_i64().unwrap()));
            if pages == 0 {
                assert!(path.ends_with("limit=2"));
                assert!(
                    after
                        .as_deref()
                        .unwrap()
                        .starts_with("/api/v1/tickets?kind=complaint&limit=2&cursor=")
                );
                complaint(&app, &support, "B1").await;
            }
            pages += 1;
            next = after;
        }
        assert_eq!(seen, before, "every ticket once, newest first");
        assert_eq!(pages, 3);
        // An operator's pages hold its fleet's tickets only.
        let (rows, next) = page(&app, "/api/v1/tickets?limit=1000", &operator).await;
        assert!(next.is_none());
        assert!(rows.iter().all(|t| t["fleet"] == "fa"));
        assert_eq!(rows.len(), 3);

        // Vehicles by fleet then id; one registered between pages is placed
        // by its key (after the position: in the walk).
        let mut seen = Vec::new();
        let mut next = Some("/api/v1/vehicles?limit=2".to_owned());
        let mut first = true;
        while let Some(path) = next {
            let (rows, after) = page(&app, &path, &support).await;
            seen.extend(rows.iter().map(|v| v["id"].as_str().unwrap().to_owned()));
            if first {
                register(&db, &[("fa", "A0"), ("fb", "B3")]).await;
                first = false;
            }
            next = after;
        }
        assert_eq!(seen, ["A1", "A2", "A4", "B1", "B2", "B3"]);
        let (rows, _) = page(&app, "/api/v1/vehicles?limit=1000", &operator).await;
        let mine: Vec<&str> = rows.iter().map(|v| v["id"].as_str().unwrap()).collect();
        assert_eq!(mine, ["A0", "A1", "A2", "A4"]);

        // Alerts, newest first, ties in time by id.
        let at = "2026-03-02T08:00:00.000000Z";
        for (id, fleet) in [("a-1", "fa"), ("a-2", "fb"), ("a-3", "fa")] {
            alert(&db, id, at, fleet).await;
        }
        alert(&db, "a-0", "2026-03-01T08:00:00.000000Z", "fa").await;
        let mut seen = Vec::new();
        let mut next = Some("/api/v1/alerts?limit=1".to_owned());
        let mut first = true;
        while let Some(path) = next {
            let (rows, after) = page(&app, &path, &support).await;
            seen.extend(rows.iter().map(|a| a["id"].as_str().unwrap().to_owned()));
            if first {
                alert(&db, "a-9", "2026-03-03T08:00:00.000000Z", "fa").await;
                first = false;
            }
            next = after;
        }
        assert_eq!(seen, ["a-3", "a-2", "a-1", "a-0"]);
        let (rows, _) = page(&app, "/api/v1/alerts?limit=2", &operator).await;
        let mine: Vec<&str> = rows.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(mine, ["a-9", "a-3"]);
    }

    #[test]
    fn walks_on_sqlite() {
        crate::db::testing::on_sqlite(pages_walk_every_list_without_repeats_or_gaps);
    }

    #[test]
    fn walks_on_postgres() {
        crate::db::testing::on_postgres(pages_walk_every_list_without_repeats_or_gaps);
    }

    async fn limits_and_cursors_are_checked(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        register(&db, &[("fa", "A1"), ("fa", "A2")]).await;
        let app = crate::http::app(state(db.clone(), dir.path()));
        let support = token(&db, Role::Support, &[]).await;
        for list in ["vehicles", "tickets", "alerts", "dead-letters"] {
            for limit in ["0", "1001", "-1", "x", "99999999999"] {
                let path = format!("/api/v1/{list}?limit={limit}");
                let r = call(&app, get(&path, Some(&support))).await;
                assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
                assert!(json(r).await["error"].is_string());
            }
            for limit in ["1", "1000"] {
                let path = format!("/api/v1/{list}?limit={limit}");
                let r = call(&app, get(&path, Some(&support))).await;
                assert_eq!(r.status(), StatusCode::OK, "{path}");
            }
            let other = if list == "vehicles" {
                super::encode(&crate::tickets::TicketId(1))
            } else {
                super::encode(&super::VehicleKey {
                    fleet: fleetcare_ingest::ids::FleetId::new("fa").unwrap(),
                    vehicle: fleetcare_ingest::ids::VehicleId::new("A1").unwrap(),
                })
            };
            for cursor in ["garbage", "74", "", &other, &"ab".repeat(600)] {
                let path = format!("/api/v1/{list}?cursor={cursor}");
                let r = call(&app, get(&path, Some(&support))).await;
                assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
                let error = json(r).await["error"].as_str().unwrap().to_owned();
                assert!(error.contains("cursor"), "{error}");
            }
        }
        // limit=1 of two vehicles: a next page; limit=2: none.
        let (rows, next) = page(&app, "/api/v1/vehicles?limit=1", &support).await;
        assert_eq!((rows.len(), next.is_some()), (1, true));
        let (rows, next) = page(&app, "/api/v1/vehicles?limit=2", &support).await;
        assert_eq!((rows.len(), next), (2, None));
        let (rows, next) = page(&app, "/api/v1/vehicles", &support).await;
        assert_eq!((rows.len(), next), (2, None));
    }

    #[test]
    fn limits_and_cursors_on_sqlite() {
        crate::db::testing::on_sqlite(limits_and_cursors_are_checked);
    }
}
