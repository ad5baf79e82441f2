//! `GET /vehicles` (the registry, in pages) and `GET /vehicles/{id}` (one
//! vehicle's service archive: meters, episodes, services, its newest
//! tickets, next services).

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use fleetcare_ingest::ids::VehicleId;
use serde::Serialize;

use super::error::ApiError;
use super::page::{PageParams, VehicleKey};
use super::{ApiPath, ApiState, blocking};
use crate::http::auth::Scope;
use crate::query::archive::{self, Episode, MeterReading};
use crate::registry::{self, ServiceRecord, Vehicle};
use crate::report::{self, DutyMeterRow, NextServiceRow};
use crate::tickets::{Ticket, TicketFilter};

/// The archive lists a vehicle's newest tickets, at most this many; the
/// rest are pages of `GET /tickets?vehicle=ID`.
pub(crate) const ARCHIVE_TICKETS: usize = 100;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/vehicles", get(list))
        .route("/vehicles/{id}", get(show))
}

/// A registered vehicle as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct VehicleView {
    pub(crate) id: String,
    pub(crate) fleet: String,
    pub(crate) model: String,
    pub(crate) vin: Option<String>,
    pub(crate) commissioned_on: String,
    pub(crate) depot: String,
}

impl From<&Vehicle> for VehicleView {
    fn from(v: &Vehicle) -> Self {
        Self {
            id: v.id.as_str().to_owned(),
            fleet: v.fleet.as_str().to_owned(),
            model: v.model.as_str().to_owned(),
            vin: v.vin.as_ref().map(|v| v.as_str().to_owned()),
            commissioned_on: v.commissioned_on.format("%Y-%m-%d").to_string(),
            depot: v.depot.as_str().to_owned(),
        }
    }
}

/// A service done, as the archive lists it.
#[derive(Debug, Serialize)]
pub(crate) struct ServiceView {
    pub(crate) task: String,
    pub(crate) performed_at: String,
    pub(crate) engine_hours: Option<f64>,
    pub(crate) pto_hours: Option<f64>,
    pub(crate) odometer_km: Option<f64>,
    /// `import` or `ticket`.
    pub(crate) source: &'static str,
}

impl From<&ServiceRecord> for ServiceView {
    fn from(s: &ServiceRecord) -> Self {
        Self {
            task: s.task.to_string(),
            performed_at: s.performed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            engine_hours: s.engine_hours,
            pto_hours: s.pto_hours,
            odometer_km: s.odometer_km,
            source: s.source.as_str(),
        }
    }
}

/// One vehicle's service archive.
#[derive(Debug, Serialize)]
pub(crate) struct Archive {
    pub(crate) vehicle: VehicleView,
    pub(crate) meters: Vec<MeterReading>,
    pub(crate) episodes: Vec<Episode>,
    pub(crate) services: Vec<ServiceView>,
    pub(crate) tickets: Vec<Ticket>,
    pub(crate) next_services: Vec<NextServiceRow>,
    /// Tasks with hard duty (C12): the raw meter beside the adjusted one.
    pub(crate) duty_meters: Vec<DutyMeterRow>,
}

/// Every registered vehicle the caller may see, by fleet then id (what
/// `GET /vehicles` lists and the web UI's fleet overview shows).
pub(crate) async fn visible_vehicles(
    state: &ApiState,
    scope: &Scope,
) -> Result<Vec<Vehicle>, ApiError> {
    let vehicles = registry::vehicles(&state.db).await?;
    Ok(scope.filter(vehicles, |v| Some(&v.fleet)))
}

/// `GET /vehicles`: a page of the registry, by fleet then id.
async fn list(
    State(state): State<ApiState>,
    scope: Scope,
    page: PageParams,
) -> Result<Response, ApiError> {
    let after = page.after::<VehicleKey>()?;
    let rows = registry::vehicles_page(
        &state.db,
        scope.fleets_visible(),
        after.as_ref().map(|k| (&k.fleet, &k.vehicle)),
        page.fetch(),
    )
    .await?;
    let (rows, next) = page.cut(scope.filter(rows, |v| Some(&v.fleet)), |rows| {
        rows.last().map(|v| VehicleKey {
            fleet: v.fleet.clone(),
            vehicle: v.id.clone(),
        })
    });
    Ok(page.respond(rows.iter().map(VehicleView::from).collect(), next))
}

/// The registered vehicle `id` if the caller may see it.
pub(crate) async fn visible_vehicle(
    state: &ApiState,
    scope: &Scope,
    id: &str,
) -> Result<Vehicle, ApiError> {
    let not_found = || ApiError::NotFound("vehicle".to_owned());
    let id = VehicleId::new(id).map_err(|_| not_found())?;
    let vehicle = registry::vehicle(&state.db, &id)
        .await?
        .ok_or_else(not_found)?;
    scope.check_fleet(Some(&vehicle.fleet), "vehicle")?;
    Ok(vehicle)
}

async fn show(
    State(state): State<ApiState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Archive>, ApiError> {
    Ok(Json(service_archive(&state, &scope, &id).await?))
}

/// The service archive of vehicle `id` (`GET /vehicles/{id}`, the web UI's
/// vehicle page); 404 unless the caller may see it.
pub(crate) async fn service_archive(
    state: &ApiState,
    scope: &Scope,
    id: &str,
) -> Result<Archive, ApiError> {
    let vehicle = visible_vehicle(state, scope, id).await?;
    let services = registry::vehicle_services(&state.db, &vehicle.id).await?;
    let filter = TicketFilter {
        vehicle: Some(vehicle.id.clone()),
        fleets_visible: scope.fleets_visible().map(<[_]>::to_vec),
        ..TicketFilter::default()
    };
    let tickets = state
        .tickets
        .list_page(&filter, None, ARCHIVE_TICKETS)
        .await
        .map_err(super::tickets::error)?;
    let service_views = services.iter().map(ServiceView::from).collect();
    let reg = report::Registry {
        vehicles: vec![vehicle.clone()],
        services,
        stock: Vec::new(),
    };
    let st = state.clone();
    let v = vehicle.clone();
    let (meters, episodes, (next_services, duty_meters)) = blocking(move || {
        let store = archive::open(&st.store)?;
        let now = Utc::now();
        let meters = archive::latest_meters(&store, &v.fleet, &v.id)?;
        let episodes = archive::recent_episodes(&store, &v.fleet, &v.id, now.timestamp_micros())?;
        let ctx = report::Context {
            catalog: &st.catalog,
            registry: &reg,
            detect: &st.config.detect,
            as_of: now,
        };
        let tasks = report::due::assess(&store, &ctx)?;
        let next = report::due::next_service_rows(&tasks, ctx.as_of_date());
        Ok((
            meters,
            episodes,
            (next, report::due::duty_meter_rows(&tasks)),
        ))
    })
    .await?;
    Ok(Archive {
        vehicle: VehicleView::from(&vehicle),
        meters,
        episodes,
        services: service_views,
        tickets,
        next_services,
        duty_meters,
    })
}
