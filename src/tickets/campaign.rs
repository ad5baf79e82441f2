//! Recall campaigns (C10): a defect of one model, often found as a batch
//! defect, recalled on every affected registered vehicle with one `recall`
//! ticket each; the campaign's progress is those tickets' states.

use chrono::{DateTime, NaiveDate, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use serde::Serialize;

use super::Tickets;
use super::error::{Result, TicketError};
use super::state::TicketState;
use super::store;
use super::types::{NewAlert, Priority, Raised, TicketId, TicketKind};
use crate::catalog::ModelId;

/// Longest campaign title accepted.
const MAX_TITLE: usize = 200;

/// Priority of recall tickets: planned work, booked with the customer.
pub const RECALL_PRIORITY: Priority = Priority::P3;

/// What `POST /campaigns` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub model: ModelId,
    pub spn: Spn,
    pub fmi: Fmi,
    pub title: String,
    /// Affected: commissioned on or after this day.
    pub commissioned_from: Option<NaiveDate>,
    /// Affected: commissioned on or before this day.
    pub commissioned_to: Option<NaiveDate>,
}

/// A campaign with its progress (`GET /campaigns/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: i64,
    pub model: ModelId,
    pub spn: u32,
    pub fmi: u8,
    pub title: String,
    pub commissioned_from: Option<NaiveDate>,
    pub commissioned_to: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Vehicles with a recall ticket of this campaign.
    pub vehicles: u64,
    /// Their tickets closed (the recall work done and followed up).
    pub closed: u64,
    /// Their tickets neither closed nor cancelled.
    pub open: u64,
    /// Their tickets cancelled (vehicle sold, scrapped…).
    pub cancelled: u64,
    /// One line per vehicle.
    pub tickets: Vec<CampaignTicket>,
}

/// One affected vehicle's recall ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignTicket {
    pub ticket: TicketId,
    pub fleet: Option<FleetId>,
    pub vehicle: Option<VehicleId>,
    pub state: TicketState,
}

impl Campaign {
    /// Closed tickets per affected vehicle, 0 to 1 (1 when none is affected).
    pub fn done_share(&self) -> f64 {
        if self.vehicles == 0 {
            1.0
        } else {
            self.closed as f64 / self.vehicles as f64
        }
    }
}

type CampaignRow = (
    i64,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

const CAMPAIGN_COLUMNS: &str = "campaign_id, model_id, spn, fmi, title, commissioned_from, \
    commissioned_to, created_at, created_by";

fn corrupt(column: &'static str, value: &str, reason: impl std::fmt::Display) -> TicketError {
    TicketError::Db(crate::db::DbError::Corrupt {
        table: "campaigns",
        column,
        value: value.to_owned(),
        reason: reason.to_string(),
    })
}

fn date(column: &'static str, text: Option<String>) -> Result<Option<NaiveDate>> {
    text.map(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|e| corrupt(column, &t, e)))
        .transpose()
}

impl Tickets {
    /// Opens campaign `new`: one `recall` ticket for every registered
    /// vehicle of the model commissioned in the range, and returns it
    /// with its progress. A vehicle that already has an open recall for
    /// the code counts it as an occurrence (one visit does the work).
    pub async fn open_campaign(
        &self,
        new: NewCampaign,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Campaign> {
        let title = new.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(TicketError::InvalidInput {
                field: "title",
                value: title,
                reason: format!("give a title of 1 to {MAX_TITLE} characters"),
            });
        }
        if let (Some(from), Some(to)) = (new.commissioned_from, new.commissioned_to)
            && from > to
        {
            return Err(TicketError::InvalidInput {
                field: "commissioned_from",
                value: from.to_string(),
                reason: format!("it is after commissioned_to {to}"),
            });
        }
        let day = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        let mut tx = store::begin_write(&self.db).await?;
        let (id,): (i64,) = sqlx::query_as(
            "UPDATE ticket_numbers SET last_id = last_id + 1 WHERE name = 'campaigns' \
             RETURNING last_id",
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO campaigns (campaign_id, model_id, spn, fmi, title, commissioned_from, \
             commissioned_to, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(new.model.as_str())
        .bind(i64::from(new.spn.raw()))
        .bind(i64::from(new.fmi.raw()))
        .bind(&title)
        .bind(day(new.commissioned_from))
        .bind(day(new.commissioned_to))
        .bind(store::time_text(at))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;

        let affected: Vec<_> = crate::registry::vehicles(&self.db)
            .await?
            .into_iter()
            .filter(|v| {
                v.model == new.model
                    && new.commissioned_from.is_none_or(|f| v.commissioned_on >= f)
                    && new.commissioned_to.is_none_or(|t| v.commissioned_on <= t)
            })
            .collect();
        let key = format!("{}:{}", new.spn, new.fmi);
        for v in &affected {
            let raised = self
                .raise_recall(
                    NewAlert {
                        kind: TicketKind::Recall,
                        fleet: Some(v.fleet.clone()),
                        vehicle: Some(v.id.clone()),
                        model: Some(v.model.clone()),
                        key: key.clone(),
                        priority: RECALL_PRIORITY,
                        title: format!("Recall #{id}: {title}"),
                        details: format!(
                            "Recall campaign #{id} for {} (SPN {} FMI {}): {title}",
                            new.model, new.spn, new.fmi
                        ),
                        at,
                    },
                    id,
                )
                .await?;
            if let Raised::Occurrence(t) = raised {
                tracing::info!(campaign = id, ticket = %t.id, vehicle = %v.id, "The vehicle's open recall ticket for the code serves the campaign.");
            }
        }
        tracing::info!(
            campaign = id,
            vehicles = affected.len(),
            "Recall campaign opened."
        );
        self.campaign(id)
            .await?
            .ok_or(TicketError::NotFound(TicketId(0)))
    }

    /// Campaign `id` with its progress, if it exists.
    pub async fn campaign(&self, id: i64) -> Result<Option<Campaign>> {
        let row: Option<CampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE campaign_id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let tickets: Vec<(i64, Option<String>, Option<String>, String)> = sqlx::query_as(
            "SELECT ticket_id, fleet_id, vehicle_id, state FROM tickets WHERE campaign_id = $1 \
             ORDER BY ticket_id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        let tickets = tickets
            .into_iter()
            .map(|(ticket, fleet, vehicle, state)| {
                Ok(CampaignTicket {
                    ticket: TicketId(ticket),
                    fleet: fleet
                        .map(|f| FleetId::new(&f).map_err(|e| corrupt("fleet_id", &f, e)))
                        .transpose()?,
                    vehicle: vehicle
                        .map(|v| VehicleId::new(&v).map_err(|e| corrupt("vehicle_id", &v, e)))
                        .transpose()?,
                    state: state.parse().map_err(|e| corrupt("state", &state, e))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(campaign_from(row, tickets)?))
    }

    /// Every campaign with its progress, newest first.
    pub async fn campaigns(&self) -> Result<Vec<Campaign>> {
        let ids: Vec<(i64,)> =
            sqlx::query_as("SELECT campaign_id FROM campaigns ORDER BY campaign_id DESC")
                .fetch_all(self.db.pool())
                .await?;
        let mut all = Vec::with_capacity(ids.len());
        for (id,) in ids {
            if let Some(c) = self.campaign(id).await? {
                all.push(c);
            }
        }
        Ok(all)
    }
}

fn campaign_from(row: CampaignRow, tickets: Vec<CampaignTicket>) -> Result<Campaign> {
    let (id, model, spn, fmi, title, from, to, created_at, created_by) = row;
    let count = |f: fn(TicketState) -> bool| tickets.iter().filter(|t| f(t.state)).count() as u64;
    Ok(Campaign {
        id,
        model: ModelId::new(model.clone()).map_err(|e| corrupt("model_id", &model, e))?,
        spn: u32::try_from(spn).map_err(|e| corrupt("spn", &spn.to_string(), e))?,
        fmi: u8::try_from(fmi).map_err(|e| corrupt("fmi", &fmi.to_string(), e))?,
        title,
        commissioned_from: date("commissioned_from", from)?,
        commissioned_to: date("commissioned_to", to)?,
        created_at: DateTime::parse_from_rfc3339(&created_at)
            .map_err(|e| corrupt("created_at", &created_at, e))?
            .with_timezone(&Utc),
        created_by,
        vehicles: tickets.len() as u64,
        closed: count(|s| s == TicketState::Closed),
        open: count(|s| !s.is_finished()),
        cancelled: count(|s| s == TicketState::Cancelled),
        tickets,
    })
}
