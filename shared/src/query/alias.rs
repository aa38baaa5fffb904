//! `alias.*`: aliases map a lowercase alias to one user (kudos by alias credit the user).
//! Changes (admin commands) bump the `aliases` version so ingest-chat reloads them.

use super::Ctx;
use crate::api::{AliasChange, ApiError, Params};
use serde_json::{json, Map, Value};

pub async fn list(ctx: &Ctx) -> Result<Value, ApiError> {
    let rows = ctx.store().await.all_aliases().await?;
    let total_aliases = rows.len();
    let mut by_user: Map<String, Value> = Map::new();
    for (user, alias) in rows {
        if let Value::Array(v) = by_user.entry(user).or_insert_with(|| json!([])) {
            v.push(json!(alias));
        }
    }
    Ok(json!({"total_users": by_user.len(), "total_aliases": total_aliases, "aliases": by_user}))
}

pub async fn get(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let username = p.required("username")?;
    let domain = ctx.domain(p)?;
    let store = ctx.store().await;
    let display = store.user(&domain, &username).await?.map(|u| u.display).unwrap_or(username.clone());
    let aliases = store.user_aliases(&username).await?;
    Ok(json!({"username": display, "count": aliases.len(), "aliases": aliases}))
}

pub async fn find(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let alias = p.required("alias")?.to_lowercase();
    let owner = ctx.store().await.alias_owner(&alias).await?;
    Ok(json!({"alias": alias, "found": owner.is_some(), "username": owner}))
}

pub async fn add(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let username = p.required("username")?;
    let alias = p.required("alias")?.to_lowercase();
    let domain = ctx.domain(p)?;
    let (_, change) = ctx.change(async |tx| tx.add_alias(&domain, &username, &alias).await).await?;
    let (added, message) = match change {
        AliasChange::Done => (true, format!("Added alias '{alias}' for {username}")),
        AliasChange::TakenBy(owner) => (false, format!("Alias '{alias}' already belongs to {owner}")),
        AliasChange::Missing => (false, format!("Alias '{alias}' not added")),
    };
    Ok(json!({"username": username, "alias": alias, "added": added, "message": message}))
}

pub async fn delete(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let username = p.required("username")?;
    let alias = p.required("alias")?.to_lowercase();
    let (_, change) = ctx.change(async |tx| tx.delete_alias(&username, &alias).await).await?;
    let (deleted, message) = match change {
        AliasChange::Done => (true, format!("Deleted alias '{alias}' of {username}")),
        _ => (false, format!("{username} has no alias '{alias}'")),
    };
    Ok(json!({"username": username, "alias": alias, "deleted": deleted, "message": message}))
}

pub async fn update(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let old_alias = p.required("old_alias")?.to_lowercase();
    let new_alias = p.required("new_alias")?.to_lowercase();
    let (_, change) = ctx.change(async |tx| tx.rename_alias(&old_alias, &new_alias).await).await?;
    let (updated, message) = match change {
        AliasChange::Done => (true, format!("Renamed alias '{old_alias}' to '{new_alias}'")),
        AliasChange::TakenBy(owner) => (false, format!("Alias '{new_alias}' already belongs to {owner}")),
        AliasChange::Missing => (false, format!("No alias '{old_alias}'")),
    };
    Ok(json!({"old_alias": old_alias, "new_alias": new_alias, "updated": updated, "message": message}))
}
