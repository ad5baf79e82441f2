//! `/ui/complaints/new`: the complaint form (C10), the web form of the
//! API's `POST /tickets` with `kind: complaint` — fleet, vehicle (may be
//! left empty), title, details, the complainant and the channel the
//! complaint came in by. `POST /ui/complaints` files it with the API's
//! checks (an operator files for its own fleets only) and shows the new
//! ticket; a refused form comes back filled in with the reason.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::{WebError, see_other};
use super::layout::{Nav, page as frame};
use super::session::Session;
use crate::http::api::{ApiError, Resource, tickets};
use crate::tickets::{Channel, Complainant, TicketKind, Zone};

/// The form as posted (and as shown again when refused).
#[derive(Debug, Default, Deserialize)]
pub struct ComplaintForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    fleet: String,
    #[serde(default)]
    vehicle: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    details: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    zone: String,
}

fn given(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

impl ComplaintForm {
    fn request(&self) -> Result<tickets::ReportRequest, String> {
        let channel = self.channel.parse::<Channel>().map_err(|e| e.to_string())?;
        let zone = given(&self.zone).map(|z| z.parse::<Zone>()).transpose()?;
        if self.name.trim().is_empty() {
            return Err("say who complained (name)".to_owned());
        }
        Ok(tickets::ReportRequest {
            kind: TicketKind::Complaint,
            fleet: given(&self.fleet),
            vehicle: given(&self.vehicle),
            title: self.title.clone(),
            details: self.details.clone(),
            complainant: Some(Complainant {
                name: self.name.clone(),
                phone: given(&self.phone),
                email: given(&self.email),
            }),
            channel: Some(channel),
            zone,
        })
    }
}

/// `GET /ui/complaints/new`.
pub async fn form(session: Session) -> Result<Response, WebError> {
    session.scope(Resource::Tickets)?;
    let mut f = ComplaintForm {
        channel: Channel::Phone.as_str().to_owned(),
        ..ComplaintForm::default()
    };
    // An operator of one fleet files for it.
    if let [only] = session.caller.fleets.as_slice() {
        f.fleet = only.as_str().to_owned();
    }
    Ok(render(&session, &f, None).into_response())
}

fn render(session: &Session, f: &ComplaintForm, problem: Option<&str>) -> Markup {
    let t = session.lang.text();
    let channel_name = |c: Channel| match c {
        Channel::Phone => t.channel_phone,
        Channel::Email => t.channel_email,
        Channel::Visit => t.channel_visit,
        Channel::Web => t.channel_web,
    };
    let body = html! {
        @if let Some(p) = problem {
            p.error role="alert" { (p) }
        }
        form.complaint #complaint method="post" action="/ui/complaints" {
            input type="hidden" name="csrf" value=(session.csrf());
            label { (t.fleet) input name="fleet" required maxlength="64" value=(f.fleet); }
            label { (t.vehicle) " " small.muted { "(" (t.optional) ")" }
                input name="vehicle" maxlength="64" value=(f.vehicle); }
            label { (t.title) input name="title" required maxlength="200" value=(f.title); }
            label { (t.details) textarea name="details" rows="4" maxlength="10000" { (f.details) } }
            fieldset {
                legend { (t.complainant) }
                label { (t.complainant_name) input name="name" required maxlength="200" value=(f.name); }
                label { (t.phone) input name="phone" type="tel" maxlength="200" value=(f.phone); }
                label { (t.email) input name="email" type="email" maxlength="200" value=(f.email); }
            }
            label { (t.channel)
                select name="channel" {
                    @for c in Channel::ALL {
                        option value=(c.as_str()) selected[f.channel == c.as_str()] { (channel_name(*c)) }
                    }
                }
            }
            label { (t.zone)
                select name="zone" {
                    option value="" { "–" }
                    option value="city" selected[f.zone == "city"] { (t.zone_city) }
                    option value="rural" selected[f.zone == "rural"] { (t.zone_rural) }
                }
            }
            button type="submit" { (t.file_complaint) }
        }
    };
    frame(session, Some(Nav::Tickets), t.complaint_title, body)
}

/// `POST /ui/complaints`: files the complaint, then shows its ticket.
pub async fn submit(
    State(state): State<WebState>,
    session: Session,
    Form(f): Form<ComplaintForm>,
) -> Result<Response, WebError> {
    session.check_csrf(&f.csrf)?;
    let scope = session.scope(Resource::Tickets)?;
    let refused = |message: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&session, &f, Some(&message)),
        )
            .into_response()
    };
    let request = match f.request() {
        Ok(r) => r,
        Err(e) => return Ok(refused(e)),
    };
    match tickets::file(&state.api, &scope, request).await {
        Ok(ticket) => {
            tracing::info!(ticket = %ticket.id, actor = scope.actor(), "Complaint filed in the web UI.");
            Ok(see_other(&format!("/ui/tickets/{}", ticket.id)))
        }
        Err(e @ ApiError::Unprocessable(_)) => Ok(refused(e.to_string())),
        Err(ApiError::NotFound(what)) => Ok(refused(format!(
            "no {what} of that name among those you may file for"
        ))),
        Err(e) => Err(e.into()),
    }
}
