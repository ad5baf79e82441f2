//! The ledger's rows in the database: appending movements, summing them,
//! pages of stock and movements, open orders.

use chrono::{DateTime, Utc};
use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection, Arguments, AssertSqlSafe, Transaction};

use super::{
    Balance, Movement, MovementKind, NewMovement, PartCheck, Shortage, day_start, time_text,
};
use crate::catalog::{PartId, PartQty};
use crate::db::{Backend, Db, DbError, Result};
use crate::registry::{Depot, StockLevel};

/// Rows per INSERT: 8 values each, well under both servers' limits on
/// bound parameters.
const INSERT_CHUNK: usize = 500;

/// A write transaction that waits for SQLite's write lock at its start
/// (see `tickets::store::begin_write`).
pub(super) async fn begin_write(db: &Db) -> Result<Transaction<'static, Any>> {
    Ok(match db.backend() {
        Backend::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => db.pool().begin().await?,
    })
}

/// Appends `moves` inside the caller's transaction, numbered in order.
pub(crate) async fn append(conn: &mut AnyConnection, moves: &[NewMovement]) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(moves.len()).unwrap_or(i64::MAX);
    // The counter row stays locked until the transaction ends.
    let (last,): (i64,) = sqlx::query_as(
        "UPDATE stock_movement_numbers SET last_id = last_id + $1 \
         WHERE name = 'movements' RETURNING last_id",
    )
    .bind(n)
    .fetch_one(&mut *conn)
    .await?;
    let mut id = last - n;
    for chunk in moves.chunks(INSERT_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO stock_movements \
             (movement_id, part, depot, kind, qty, at, reference, actor) VALUES ",
        );
        let mut args = AnyArguments::default();
        for (i, m) in chunk.iter().enumerate() {
            id += 1;
            let b = i * 8;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            ));
            let bound = args
                .add(id)
                .and_then(|()| args.add(m.part.as_str().to_owned()))
                .and_then(|()| args.add(m.depot.as_str().to_owned()))
                .and_then(|()| args.add(m.kind.as_str()))
                .and_then(|()| args.add(m.qty))
                .and_then(|()| args.add(time_text(m.at)))
                .and_then(|()| args.add(m.reference.clone()))
                .and_then(|()| args.add(m.actor.clone()));
            bound.map_err(|e| DbError::Sql(sqlx::Error::Encode(e)))?;
        }
        // Only placeholders are formatted into the text.
        sqlx::query_with(AssertSqlSafe(sql), args)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Books `moves` in one transaction (imports of other systems' ledgers,
/// the benchmark's year of movements).
pub async fn record(db: &Db, moves: &[NewMovement]) -> Result<()> {
    let mut tx = begin_write(db).await?;
    append(&mut tx, moves).await?;
    tx.commit().await?;
    Ok(())
}

/// The stock of `part` at `depot` inside the caller's transaction, and
/// whether the ledger has any movement of it there.
pub(crate) async fn on_hand_in(
    conn: &mut AnyConnection,
    part: &PartId,
    depot: &Depot,
) -> Result<(i64, bool)> {
    let (sum, n): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT), COUNT(*) FROM stock_movements \
         WHERE part = $1 AND depot = $2",
    )
    .bind(part.as_str())
    .bind(depot.as_str())
    .fetch_one(conn)
    .await?;
    Ok((sum, n > 0))
}

/// The stock of `part` at `depot`.
pub async fn on_hand(db: &Db, part: &PartId, depot: &Depot) -> Result<i64> {
    let mut conn = db.pool().acquire().await?;
    Ok(on_hand_in(&mut conn, part, depot).await?.0)
}

/// Issues the parts a closed ticket used from `depot`, in the caller's
/// transaction (the close's): one `issue` movement per part, reference
/// `ticket:ID`. Returns the parts that this left below zero there.
pub async fn issue_for_ticket_in(
    conn: &mut AnyConnection,
    ticket: i64,
    depot: &Depot,
    parts: &[(PartId, u32)],
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Shortage>> {
    let moves: Vec<NewMovement> = parts
        .iter()
        .map(|(part, qty)| NewMovement {
            part: part.clone(),
            depot: depot.clone(),
            kind: MovementKind::Issue,
            qty: -i64::from(*qty),
            at,
            reference: format!("ticket:{ticket}"),
            actor: actor.to_owned(),
        })
        .collect();
    append(conn, &moves).await?;
    let mut short = Vec::new();
    for (part, _) in parts {
        let (left, _) = on_hand_in(conn, part, depot).await?;
        if left < 0 {
            short.push(Shortage {
                part: part.clone(),
                depot: depot.clone(),
                on_hand: left,
            });
        }
    }
    Ok(short)
}

/// Moves `qty` of `part` from one depot to another: two `transfer`
/// movements with reference `transfer:REF`, in one transaction. Returns
/// the stock left at `from` (below zero is booked and reported).
#[allow(clippy::too_many_arguments)]
pub async fn transfer(
    db: &Db,
    part: &PartId,
    from: &Depot,
    to: &Depot,
    qty: u32,
    reference: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<i64> {
    let mut tx = begin_write(db).await?;
    let reference = format!("transfer:{reference}");
    let one = |depot: &Depot, qty: i64| NewMovement {
        part: part.clone(),
        depot: depot.clone(),
        kind: MovementKind::Transfer,
        qty,
        at,
        reference: reference.clone(),
        actor: actor.to_owned(),
    };
    append(
        &mut tx,
        &[one(from, -i64::from(qty)), one(to, i64::from(qty))],
    )
    .await?;
    let (left, _) = on_hand_in(&mut tx, part, from).await?;
    tx.commit().await?;
    Ok(left)
}

fn part_of(text: &str) -> Result<PartId> {
    PartId::new(text).map_err(|e| corrupt("part", text, e))
}

fn depot_of(text: &str) -> Result<Depot> {
    Depot::new(text).map_err(|e| corrupt("depot", text, e))
}

fn corrupt(column: &'static str, value: &str, reason: impl std::fmt::Display) -> DbError {
    DbError::Corrupt {
        table: "stock_movements",
        column,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// `depot IN ($n, …)` for a list of depots, numbering from `first`.
fn depot_list(first: usize, depots: &[Depot]) -> String {
    let marks: Vec<String> = (0..depots.len())
        .map(|i| format!("${}", first + i))
        .collect();
    format!("depot IN ({})", marks.join(", "))
}

/// Stock and open orders per (part, depot), by part then depot (the
/// database's text order): at most `limit` after `after`, of `depots` only
/// (`None`: every depot), of one `part` and one `depot` when given.
pub async fn balances_page(
    db: &Db,
    depots: Option<&[Depot]>,
    part: Option<&PartId>,
    depot: Option<&Depot>,
    after: Option<(&PartId, &Depot)>,
    limit: usize,
) -> Result<Vec<Balance>> {
    if depots.is_some_and(<[Depot]>::is_empty) {
        return Ok(Vec::new());
    }
    let mut filters: Vec<String> = Vec::new();
    let mut args = AnyArguments::default();
    let enc = |e| DbError::Sql(sqlx::Error::Encode(e));
    if let Some(p) = part {
        args.add(p.as_str().to_owned()).map_err(enc)?;
        filters.push(format!("part = ${}", args.len()));
    }
    if let Some(d) = depot {
        args.add(d.as_str().to_owned()).map_err(enc)?;
        filters.push(format!("depot = ${}", args.len()));
    }
    if let Some(list) = depots {
        filters.push(depot_list(args.len() + 1, list));
        for d in list {
            args.add(d.as_str().to_owned()).map_err(enc)?;
        }
    }
    if let Some((p, d)) = after {
        args.add(p.as_str().to_owned()).map_err(enc)?;
        let i = args.len();
        args.add(d.as_str().to_owned()).map_err(enc)?;
        let j = args.len();
        filters.push(format!("(part > ${i} OR (part = ${i} AND depot > ${j}))"));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    args.add(i64::try_from(limit).unwrap_or(i64::MAX))
        .map_err(enc)?;
    let n = args.len();
    let sql = format!(
        "SELECT part, depot, CAST(SUM(on_hand) AS BIGINT), CAST(SUM(on_order) AS BIGINT), \
                CAST(SUM(moves) AS BIGINT) FROM ( \
           SELECT part, depot, qty AS on_hand, 0 AS on_order, 1 AS moves FROM stock_movements \
           UNION ALL \
           SELECT part, depot, 0 AS on_hand, qty AS on_order, 0 AS moves FROM stock_orders \
           WHERE received_at IS NULL \
         ) AS ledger {filter} GROUP BY part, depot ORDER BY part, depot LIMIT ${n}"
    );
    // Only placeholders and fixed text are formatted into the statement.
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as_with(AssertSqlSafe(sql), args)
        .fetch_all(db.pool())
        .await?;
    rows.into_iter()
        .map(|(part, depot, on_hand, on_order, moves)| {
            Ok(Balance {
                part: part_of(&part)?,
                depot: depot_of(&depot)?,
                on_hand,
                on_order,
                below_zero: on_hand < 0,
                has_movements: moves > 0,
            })
        })
        .collect()
}

/// Every (part, depot) the ledger or an open order knows, by part then
/// depot.
pub async fn balances(db: &Db) -> Result<Vec<Balance>> {
    balances_page(db, None, None, None, None, usize::MAX >> 2).await
}

/// Stock levels for the parts forecast: every (part, depot) with a
/// movement, stock below zero counted as none.
pub async fn levels(db: &Db) -> Result<Vec<StockLevel>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT part, depot, CAST(SUM(qty) AS BIGINT) FROM stock_movements \
         GROUP BY part, depot ORDER BY part, depot",
    )
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|(part, depot, on_hand)| {
            Ok(StockLevel {
                part: part_of(&part)?,
                depot: depot_of(&depot)?,
                on_hand: u64::try_from(on_hand).unwrap_or(0),
            })
        })
        .collect()
}

/// [`levels`] from balances already read: the pairs with movements, stock
/// below zero counted as none.
pub fn levels_of(balances: &[Balance]) -> Vec<StockLevel> {
    balances
        .iter()
        .filter(|b| b.has_movements)
        .map(|b| StockLevel {
            part: b.part.clone(),
            depot: b.depot.clone(),
            on_hand: u64::try_from(b.on_hand).unwrap_or(0),
        })
        .collect()
}

/// The movements of `part`, newest first: at most `limit` numbered below
/// `before`, at `depot` when given, of `depots` only (`None`: every
/// depot).
pub async fn movements_page(
    db: &Db,
    part: &PartId,
    depot: Option<&Depot>,
    depots: Option<&[Depot]>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Movement>> {
    if depots.is_some_and(<[Depot]>::is_empty) {
        return Ok(Vec::new());
    }
    let mut args = AnyArguments::default();
    let enc = |e| DbError::Sql(sqlx::Error::Encode(e));
    args.add(part.as_str().to_owned()).map_err(enc)?;
    let mut n = 1;
    let mut filters = vec!["part = $1".to_owned()];
    if let Some(d) = depot {
        n += 1;
        args.add(d.as_str().to_owned()).map_err(enc)?;
        filters.push(format!("depot = ${n}"));
    }
    if let Some(list) = depots {
        filters.push(depot_list(n + 1, list));
        for d in list {
            n += 1;
            args.add(d.as_str().to_owned()).map_err(enc)?;
        }
    }
    if let Some(b) = before {
        n += 1;
        args.add(b).map_err(enc)?;
        filters.push(format!("movement_id < ${n}"));
    }
    args.add(i64::try_from(limit).unwrap_or(i64::MAX))
        .map_err(enc)?;
    let sql = format!(
        "SELECT movement_id, part, depot, kind, qty, at, reference, actor FROM stock_movements \
         WHERE {} ORDER BY movement_id DESC LIMIT ${}",
        filters.join(" AND "),
        n + 1
    );
    type MovementRow = (i64, String, String, String, i64, String, String, String);
    // Only placeholders and fixed text are formatted into the statement.
    let rows: Vec<MovementRow> = sqlx::query_as_with(AssertSqlSafe(sql), args)
        .fetch_all(db.pool())
        .await?;
    rows.into_iter()
        .map(|(id, part, depot, kind, qty, at, reference, actor)| {
            Ok(Movement {
                id,
                part: part_of(&part)?,
                depot: depot_of(&depot)?,
                kind: MovementKind::parse(&kind)
                    .ok_or_else(|| corrupt("kind", &kind, "not a movement kind"))?,
                qty,
                at: DateTime::parse_from_rfc3339(&at)
                    .map_err(|e| corrupt("at", &at, e))?
                    .with_timezone(&Utc),
                reference,
                actor,
            })
        })
        .collect()
}

/// Whether `depot` has what `needs` lists: one check per part, in the
/// catalogue's order.
pub async fn availability(db: &Db, depot: &Depot, needs: &[PartQty]) -> Result<Vec<PartCheck>> {
    let mut out = Vec::with_capacity(needs.len());
    for need in needs {
        let row = balances_page(db, None, Some(&need.part), Some(depot), None, 1).await?;
        let (on_hand, on_order) = row.first().map_or((0, 0), |b| (b.on_hand, b.on_order));
        out.push(PartCheck {
            part: need.part.clone(),
            needed: need.qty,
            on_hand,
            on_order,
            enough: on_hand as f64 >= need.qty,
        });
    }
    Ok(out)
}

/// Records that support is being alerted about ticket `ticket` waiting for
/// parts too long. True the first time (the caller sends the alert), false
/// when it was recorded before, by this process or another.
pub async fn first_wait_alert(db: &Db, ticket: i64, at: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO parts_wait_alerts (ticket_id, alerted_at) VALUES ($1, $2) \
         ON CONFLICT (ticket_id) DO NOTHING",
    )
    .bind(ticket)
    .bind(time_text(at))
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An open order line as stored: qty, ordered_on, and whether received.
pub(super) async fn order_line(
    conn: &mut AnyConnection,
    reference: &str,
    part: &PartId,
    depot: &Depot,
) -> Result<Option<(i64, String, bool)>> {
    let row: Option<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT qty, ordered_on, received_at FROM stock_orders \
         WHERE reference = $1 AND part = $2 AND depot = $3",
    )
    .bind(reference)
    .bind(part.as_str())
    .bind(depot.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(qty, on, received)| (qty, on, received.is_some())))
}

/// Places (or, while open, changes) an order line.
pub(super) async fn upsert_order(
    conn: &mut AnyConnection,
    reference: &str,
    part: &PartId,
    depot: &Depot,
    qty: i64,
    ordered_on: chrono::NaiveDate,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO stock_orders (reference, part, depot, qty, ordered_on, actor) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (reference, part, depot) DO UPDATE \
         SET qty = excluded.qty, ordered_on = excluded.ordered_on, actor = excluded.actor",
    )
    .bind(reference)
    .bind(part.as_str())
    .bind(depot.as_str())
    .bind(qty)
    .bind(time_text(day_start(ordered_on)))
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

/// Closes the open order line a receipt answers, if there is one.
pub(super) async fn close_order(
    conn: &mut AnyConnection,
    reference: &str,
    part: &PartId,
    depot: &Depot,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE stock_orders SET received_at = $1 \
         WHERE reference = $2 AND part = $3 AND depot = $4 AND received_at IS NULL",
    )
    .bind(time_text(at))
    .bind(reference)
    .bind(part.as_str())
    .bind(depot.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The quantity already received for `reference` of `part` at `depot`
/// (receipts booked with that order reference), if any.
pub(super) async fn received(
    conn: &mut AnyConnection,
    reference: &str,
    part: &PartId,
    depot: &Depot,
) -> Result<Option<i64>> {
    let (sum, n): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT), COUNT(*) FROM stock_movements \
         WHERE reference = $1 AND part = $2 AND depot = $3 AND kind = 'receipt'",
    )
    .bind(reference)
    .bind(part.as_str())
    .bind(depot.as_str())
    .fetch_one(conn)
    .await?;
    Ok((n > 0).then_some(sum))
}
