//! `/ui/campaigns`: recall campaigns with their progress, for support and
//! admin; `/ui/campaigns/{id}`: one campaign with each vehicle's recall
//! ticket; `POST /ui/campaigns`: the form the batch defects of the trends
//! page carry (the API's `POST /campaigns`, same checks).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::{WebError, see_other};
use super::i18n::Lang;
use super::layout::{page as frame, scroll, time};
use super::session::Session;
use crate::catalog::ModelId;
use crate::http::api::campaigns::{self, CampaignBody};
use crate::http::api::{Action, ApiError, Resource};
use crate::report::RecurringRow;
use crate::tickets::Campaign;

/// The progress of a campaign: `closed / vehicles` and a bar.
fn progress(c: &Campaign, lang: Lang) -> Markup {
    let t = lang.text();
    html! {
        span.progress data-campaign=(c.id) data-vehicles=(c.vehicles) data-closed=(c.closed) data-open=(c.open) {
            progress value=(c.closed) max=(c.vehicles.max(1)) {}
            " " (c.closed) " / " (c.vehicles) " " (t.campaign_closed)
            @if c.open > 0 { " · " (c.open) " " (t.campaign_open) }
        }
    }
}

/// `GET /ui/campaigns`.
pub async fn list(State(state): State<WebState>, session: Session) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Tickets)?;
    scope.check_may(Action::RunCampaigns)?;
    let all = state
        .api
        .tickets
        .campaigns()
        .await
        .map_err(crate::http::api::tickets::error)?;
    let lang = session.lang;
    let t = lang.text();
    let body = html! {
        @if all.is_empty() {
            p.muted { (t.no_campaigns) }
        } @else {
            (scroll(html! {
                table.stack #campaigns {
                    thead { tr {
                        th { "#" } th { (t.title) } th { (t.model) } th.num { "SPN/FMI" }
                        th { (t.created) } th { (t.campaign_progress) }
                    } }
                    tbody {
                        @for c in &all {
                            tr data-campaign=(c.id) {
                                td data-label="#" { a href=(format!("/ui/campaigns/{}", c.id)) { "#" (c.id) } }
                                td data-label=(t.title) { (c.title) }
                                td data-label=(t.model) { (lang.model_name(&state.api.catalog, &c.model)) }
                                td.num data-label="SPN/FMI" { (c.spn) "/" (c.fmi) }
                                td data-label=(t.created) { (time(c.created_at)) }
                                td data-label=(t.campaign_progress) { (progress(c, lang)) }
                            }
                        }
                    }
                }
            }))
        }
    };
    Ok(frame(&session, None, t.campaigns_title, body).into_response())
}

/// `GET /ui/campaigns/{id}`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Tickets)?;
    let c = campaigns::visible_campaign(&state.api, &scope, &id).await?;
    let lang = session.lang;
    let t = lang.text();
    let title = format!("{} #{} · {}", t.campaign, c.id, c.title);
    let body = html! {
        dl.facts #campaign-facts data-campaign=(c.id) {
            div { dt { (t.model) } dd { (lang.model_name(&state.api.catalog, &c.model)) } }
            div { dt { "SPN/FMI" } dd { (c.spn) "/" (c.fmi) } }
            div { dt { (t.created) } dd { (time(c.created_at)) " · " (c.created_by) } }
            @if let Some(f) = c.commissioned_from { div { dt { (t.commissioned_from) } dd { (f.to_string()) } } }
            @if let Some(to) = c.commissioned_to { div { dt { (t.commissioned_to) } dd { (to.to_string()) } } }
            div { dt { (t.campaign_progress) } dd { (progress(&c, lang)) } }
        }
        (scroll(html! {
            table.stack #campaign-tickets {
                thead { tr { th { (t.ticket) } th { (t.fleet) } th { (t.vehicle) } th { (t.state) } } }
                tbody {
                    @for r in &c.tickets {
                        tr data-ticket=(r.ticket) data-state=(r.state.as_str()) {
                            td data-label=(t.ticket) { a href=(format!("/ui/tickets/{}", r.ticket)) { "#" (r.ticket) } }
                            td data-label=(t.fleet) { (r.fleet.as_ref().map_or("–", |f| f.as_str())) }
                            td data-label=(t.vehicle) {
                                @match &r.vehicle {
                                    Some(v) => a href=(format!("/ui/vehicles/{v}")) { (v.as_str()) },
                                    None => "–",
                                }
                            }
                            td data-label=(t.state) { (lang.state(r.state)) }
                        }
                    }
                }
            }
        }))
    };
    Ok(frame(&session, None, &title, body).into_response())
}

/// The recall form of a batch-defect row of the trends page.
pub fn recall_form(session: &Session, row: &RecurringRow, model: &ModelId, title: &str) -> Markup {
    let t = session.lang.text();
    html! {
        form.recall method="post" action="/ui/campaigns" {
            input type="hidden" name="csrf" value=(session.csrf());
            input type="hidden" name="model" value=(model.as_str());
            input type="hidden" name="spn" value=(row.spn);
            input type="hidden" name="fmi" value=(row.fmi);
            input name="title" maxlength="200" value=(title) aria-label=(t.title);
            button type="submit" { (t.open_campaign) }
        }
    }
}

/// The recall form as posted.
#[derive(Debug, Deserialize)]
pub struct CampaignForm {
    csrf: String,
    model: String,
    spn: u32,
    fmi: u8,
    title: String,
    commissioned_from: Option<String>,
    commissioned_to: Option<String>,
}

/// `POST /ui/campaigns`: opens the campaign, then shows it.
pub async fn create(
    State(state): State<WebState>,
    session: Session,
    Form(form): Form<CampaignForm>,
) -> Result<Response, WebError> {
    session.check_csrf(&form.csrf)?;
    let scope = session.scope(Resource::Tickets)?;
    let day = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| {
                d.parse().map_err(|_| {
                    WebError::from(ApiError::BadRequest(format!(
                        "{d:?} is not a date; give YYYY-MM-DD"
                    )))
                })
            })
            .transpose()
    };
    let body = CampaignBody {
        model: form.model,
        spn: form.spn,
        fmi: form.fmi,
        title: form.title,
        commissioned_from: day(&form.commissioned_from)?,
        commissioned_to: day(&form.commissioned_to)?,
    };
    let c = campaigns::open(&state.api, &scope, body).await?;
    tracing::info!(
        campaign = c.id,
        vehicles = c.vehicles,
        actor = scope.actor(),
        "Recall campaign opened in the web UI."
    );
    Ok(see_other(&format!("/ui/campaigns/{}", c.id)))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::db::Db;
    use crate::http::api::Role;
    use crate::http::testing::{
        call, csrf_of, json, page, post_form, post_json, register, sign_in, state, text, token,
    };

    /// Issue 21: the recall form opens a campaign whose page shows the
    /// progress; the ticket page shows the warranty, links the campaign
    /// and, once outlets are registered, offers them with the depot's
    /// proposed; operators get neither.
    async fn campaign_pages_and_dispatch_form(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        register(&db, &[("fa", "A1"), ("fa", "A2")]).await;
        let app = crate::http::app(state(db.clone(), dir.path()));
        let support = token(&db, Role::Support, &[]).await;
        let operator = token(&db, Role::Operator, &["fa"]).await;
        let session = sign_in(&app, &support).await;
        let html = text(call(&app, page("/ui/campaigns", &session)).await).await;
        assert!(html.contains("No recall campaign yet"), "{html}");
        let csrf = csrf_of(&text(call(&app, page("/ui/tickets", &session)).await).await);
        let r = call(
            &app,
            post_form(
                "/ui/campaigns",
                &format!("csrf={csrf}&model=compactor-c12&spn=110&fmi=0&title=Thermostat+housing"),
                Some(&session),
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/ui/campaigns/1");
        let html = text(call(&app, page("/ui/campaigns/1", &session)).await).await;
        assert!(
            html.contains(r#"data-campaign="1" data-vehicles="2" data-closed="0" data-open="2""#),
            "{html}"
        );
        let list = text(call(&app, page("/ui/campaigns", &session)).await).await;
        assert!(list.contains("Thermostat housing"), "{list}");

        // The recall ticket: warranty (no meters in this store: unknown),
        // its campaign, and a free-text outlet while the register is empty.
        let r = call(
            &app,
            crate::http::testing::get("/api/v1/tickets?kind=recall", Some(&support)),
        )
        .await;
        let first = json(r).await[0]["id"].as_i64().unwrap();
        let html = text(call(&app, page(&format!("/ui/tickets/{first}"), &session)).await).await;
        assert!(html.contains(r#"data-warranty="unknown""#), "{html}");
        assert!(html.contains(r#"href="/ui/campaigns/1""#), "{html}");
        assert!(html.contains(r#"<input name="outlet""#), "{html}");
        sqlx::query(
            "INSERT INTO outlets (outlet_id, name, kind, zone, phone) VALUES \
             ('OUT-P', 'Partner north', 'partner', 'rural', NULL), ('OUT-N', 'North', 'own', 'city', NULL)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO outlet_depots (outlet_id, depot) VALUES ('OUT-P', 'north'), ('OUT-N', 'north')",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let html = text(call(&app, page(&format!("/ui/tickets/{first}"), &session)).await).await;
        assert!(html.contains(r#"<select name="outlet">"#), "{html}");
        assert!(
            html.contains(r#"<option value="OUT-N" selected>"#),
            "{html}"
        );

        // Operators: no campaigns (403), no recall form.
        let op = sign_in(&app, &operator).await;
        let r = call(&app, page("/ui/campaigns/1", &op)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = call(
            &app,
            post_json(
                "/api/v1/campaigns",
                &operator,
                &serde_json::json!({"model": "compactor-c12", "spn": 110, "fmi": 0, "title": "x"}),
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn campaign_pages_on_sqlite() {
        crate::db::testing::on_sqlite(campaign_pages_and_dispatch_form);
    }
}
