//! `kudos.phrases.*`: the trigger phrases (lowercase). Changes (admin commands) bump the
//! `phrases` version so ingest-chat reloads them without a restart.

use super::Ctx;
use crate::api::{ApiError, Params};
use serde_json::{json, Value};

pub async fn list(ctx: &Ctx) -> Result<Value, ApiError> {
    Ok(json!({"phrases": ctx.store().await.kudos_phrases().await?}))
}

pub async fn add(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let phrase = p.required("phrase")?.to_lowercase();
    let (store, added) = ctx.change(async |tx| tx.add_phrase(&phrase).await).await?;
    Ok(json!({"phrase": phrase, "added": added, "phrases": store.kudos_phrases().await?}))
}

pub async fn remove(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let phrase = p.required("phrase")?.to_lowercase();
    let (store, removed) = ctx.change(async |tx| tx.remove_phrase(&phrase).await).await?;
    Ok(json!({"phrase": phrase, "removed": removed, "phrases": store.kudos_phrases().await?}))
}
