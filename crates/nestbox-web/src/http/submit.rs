//! The submit form: files (several, drag and drop) and URLs with the usual options.

use std::collections::BTreeSet;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use nestbox_api::common::form::{FormError, FormInput, parse_tags, read_form};
use nestbox_types::{Category, NewTask, TaskId, TaskOptions};

use super::session::{Session, Viewer};
use super::{PageError, PageResult, St, Web};
use crate::render::ser;

async fn render(web: &Web, session: &Session, error: Option<&str>) -> PageResult<String> {
    let machines = web.api.core.repo.machines().await?;
    let platforms: BTreeSet<String> = machines
        .iter()
        .map(|m| m.spec.platform.clone())
        .filter(|p| !p.is_empty())
        .collect();
    let machines: Vec<_> = machines
        .iter()
        .map(|m| minijinja::context! { name => &m.spec.name, platform => &m.spec.platform })
        .collect();
    Ok(web.page(
        session,
        "submit.html.j2",
        minijinja::context! {
            error => error,
            max_upload_mb => format!("{:.1}", web.api.core.limits.max_upload as f64 / 1e6),
            default_timeout => web.settings.default_timeout,
            machines => machines,
            platforms => ser(&platforms),
            packages => ser(&web.settings.packages),
            routes => ser(&web.settings.routes),
        },
    )?)
}

pub(crate) async fn submit_page(st: St, Viewer(session): Viewer) -> PageResult<Response> {
    Ok(Html(render(&st.0, &session, None).await?).into_response())
}

/// The options every task of the submission shares.
fn options(form: &FormInput, session: &Session) -> Result<NewTask, String> {
    let get = |k: &str| form.get(k).unwrap_or("").trim().to_owned();
    let mut t = NewTask::new(Category::File, String::new());
    t.package = get("package");
    t.timeout = match get("timeout").as_str() {
        "" => 0,
        s => s
            .parse::<i64>()
            .ok()
            .filter(|v| (0..=86_400).contains(v))
            .ok_or("The timeout is a number of seconds between 0 and 86400.")?,
    };
    t.priority = match get("priority").as_str() {
        "" => 1,
        s => s
            .parse::<i64>()
            .ok()
            .filter(|v| (1..=3).contains(v))
            .ok_or("The priority is 1, 2 or 3.")?,
    };
    t.machine = get("machine");
    t.platform = get("platform");
    t.tags = parse_tags(form.get("tags"));
    t.route = Some(get("route")).filter(|r| !r.is_empty());
    let mut opts = TaskOptions::parse(&get("options"));
    // CAPE passes an archive password as the `password` option.
    let password = get("password");
    if !password.is_empty() {
        opts.0.insert("password".into(), password);
    }
    t.options = opts;
    t.owner = session.username().unwrap_or("").to_owned();
    Ok(t)
}

pub(crate) async fn submit_post(
    st: St,
    Viewer(session): Viewer,
    req: Request,
) -> PageResult<Response> {
    let web = &st.0;
    let core = &web.api.core;
    let form = match read_form(core, req, &["file"]).await {
        Ok(f) => f,
        Err(FormError::TooLarge { max }) => {
            return Err(PageError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("A file is larger than the {max}-byte limit."),
            ));
        }
        Err(FormError::Malformed(m)) => return Err(PageError::bad(m)),
        Err(FormError::Internal(e)) => return Err(e.into()),
    };
    session.require_csrf(web, form.get("csrf_token"))?;
    let session = &session;
    let again = |msg: String| async move {
        let page = render(web, session, Some(&msg)).await?;
        Ok::<_, PageError>((StatusCode::BAD_REQUEST, Html(page)).into_response())
    };
    let base = match options(&form, session) {
        Ok(b) => b,
        Err(m) => return again(m).await,
    };
    let urls = form.lines("urls");
    for u in &urls {
        let ok = url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
        if !ok {
            return again(format!("{u:?} is not an http(s) URL.")).await;
        }
    }
    let unique = form.get("unique").is_some_and(|v| !v.is_empty());
    let files: Vec<_> = form
        .files
        .into_iter()
        .filter(|f| f.field == "file")
        .collect();
    if files.is_empty() && urls.is_empty() {
        return again("Choose at least one file or enter a URL.".into()).await;
    }
    let mut ids: Vec<TaskId> = Vec::new();
    let mut skipped = 0;
    for file in files {
        if unique
            && core
                .repo
                .sample_by_hash(&file.staged.digest.sha256)
                .await?
                .is_some()
        {
            skipped += 1;
            continue;
        }
        let sample = core.store_sample(file.staged).await?;
        let mut t = base.clone();
        t.category = Category::File;
        t.target = core.materialize_target(&sample, &file.filename).await?;
        t.sample_id = Some(sample.id);
        ids.push(core.create_task(&t).await?);
    }
    for u in urls {
        let mut t = base.clone();
        t.category = Category::Url;
        t.target = u;
        ids.push(core.create_task(&t).await?);
    }
    if let Some(user) = &session.user {
        for id in &ids {
            web.api.auth.repo().set_task_user(*id, user.id).await?;
        }
    }
    web.api.wake.notify_waiters();
    web.api.wake.notify_one();
    match ids.as_slice() {
        [] => {
            again(format!(
                "All {skipped} file(s) were submitted before (unique)."
            ))
            .await
        }
        [one] => Ok(Redirect::to(&format!("/analysis/{}/", one.0)).into_response()),
        _ => Ok(Redirect::to("/").into_response()),
    }
}
