//! `POST /campaigns`, `GET /campaigns` and `GET /campaigns/{id}` (C10):
//! recall campaigns, for support and admin ([`Action::RunCampaigns`]). A
//! campaign opens one `recall` ticket per affected registered vehicle;
//! its progress is `vehicles`, `closed` and `open`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use fleetcare_ingest::j1939::{Fmi, Spn};
use serde::Deserialize;

use super::error::ApiError;
use super::page::{CursorKey, PageParams};
use super::tickets::error as ticket_error;
use super::{ApiJson, ApiPath, ApiState};
use crate::catalog::ModelId;
use crate::http::auth::{Action, Scope};
use crate::tickets::{Campaign, NewCampaign};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/campaigns", get(list).post(create))
        .route("/campaigns/{id}", get(show))
}

/// A campaign's place in the list (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CampaignKey(pub(crate) i64);

impl CursorKey for CampaignKey {
    const KIND: char = 'c';
    fn write(&self) -> String {
        self.0.to_string()
    }
    fn read(text: &str) -> Option<Self> {
        text.parse().ok().map(Self)
    }
}

/// The body of `POST /campaigns`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignBody {
    pub(crate) model: String,
    pub(crate) spn: u32,
    pub(crate) fmi: u8,
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) commissioned_from: Option<NaiveDate>,
    #[serde(default)]
    pub(crate) commissioned_to: Option<NaiveDate>,
}

impl CampaignBody {
    /// The campaign asked for, its model in the catalogue.
    pub(crate) fn checked(self, state: &ApiState) -> Result<NewCampaign, ApiError> {
        let model = ModelId::new(self.model.clone())
            .ok()
            .filter(|m| state.catalog.model(m).is_some())
            .ok_or_else(|| {
                ApiError::Unprocessable(format!(
                    "model {:?} is not in the catalogue; use one of {}",
                    self.model,
                    state
                        .catalog
                        .models()
                        .map(|m| m.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let spn = Spn::new(self.spn).ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "spn {} is out of range; SPNs are 0 to 524287",
                self.spn
            ))
        })?;
        let fmi = Fmi::new(self.fmi).ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "fmi {} is out of range; FMIs are 0 to 31",
                self.fmi
            ))
        })?;
        Ok(NewCampaign {
            model,
            spn,
            fmi,
            title: self.title,
            commissioned_from: self.commissioned_from,
            commissioned_to: self.commissioned_to,
        })
    }
}

/// Opens a campaign as the caller (the API and the web UI's form).
pub(crate) async fn open(
    state: &ApiState,
    scope: &Scope,
    body: CampaignBody,
) -> Result<Campaign, ApiError> {
    scope.check_may(Action::RunCampaigns)?;
    let new = body.checked(state)?;
    state
        .tickets
        .open_campaign(new, scope.actor(), Utc::now())
        .await
        .map_err(ticket_error)
}

/// Campaign `id` for a caller who may run campaigns.
pub(crate) async fn visible_campaign(
    state: &ApiState,
    scope: &Scope,
    id: &str,
) -> Result<Campaign, ApiError> {
    scope.check_may(Action::RunCampaigns)?;
    let not_found = || ApiError::NotFound("campaign".to_owned());
    let id = id.parse::<i64>().map_err(|_| not_found())?;
    state
        .tickets
        .campaign(id)
        .await
        .map_err(ticket_error)?
        .ok_or_else(not_found)
}

async fn create(
    State(state): State<ApiState>,
    scope: Scope,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let campaign = open(&state, &scope, body).await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

async fn show(
    State(state): State<ApiState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    Ok(Json(visible_campaign(&state, &scope, &id).await?))
}

/// `GET /campaigns`: a page of campaigns, newest first.
async fn list(
    State(state): State<ApiState>,
    scope: Scope,
    page: PageParams,
) -> Result<Response, ApiError> {
    scope.check_may(Action::RunCampaigns)?;
    let before = page.after::<CampaignKey>()?;
    let mut rows = state.tickets.campaigns().await.map_err(ticket_error)?;
    if let Some(CampaignKey(b)) = before {
        rows.retain(|c| c.id < b);
    }
    rows.truncate(page.fetch());
    let (rows, next) = page.cut(rows, |rows| rows.last().map(|c| CampaignKey(c.id)));
    Ok(page.respond(rows, next))
}
