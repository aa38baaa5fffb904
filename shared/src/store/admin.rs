//! Typed operations of [`Tx`] for the admin commands of the query functions: aliases and
//! trigger phrases. Each change bumps the `versions` key (`aliases`, `phrases`) so that
//! ingest-chat reloads its cache.

use super::AliasChange;
use super::Tx;
use anyhow::Result;

impl Tx {
    async fn alias_owner_tx(&mut self, alias: &str) -> Result<Option<(String, String)>> {
        let rows = self
            .rows("SELECT name_key, display FROM aliases WHERE alias = ?1", [alias], |r| Ok((r.get(0)?, r.get(1)?)))
            .await?;
        Ok(rows.into_iter().next())
    }

    /// Gives `alias` (lowercased) to a user unless another user has it.
    pub async fn add_alias(&mut self, domain: &str, username: &str, alias: &str) -> Result<AliasChange> {
        let (key, alias) = (username.to_lowercase(), alias.to_lowercase());
        if let Some((owner, display)) = self.alias_owner_tx(&alias).await? {
            let _ = owner;
            return Ok(AliasChange::TakenBy(display));
        }
        let display = self
            .rows("SELECT display FROM users WHERE domain = ?1 AND name_key = ?2", [domain, &key], |r| {
                Ok(r.get::<String>(0)?)
            })
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| username.to_string());
        self.exec(
            "INSERT INTO aliases(alias, name_key, display) VALUES (?1, ?2, ?3)",
            [alias.as_str(), key.as_str(), display.as_str()],
        )
        .await?;
        self.bump_version("aliases").await?;
        Ok(AliasChange::Done)
    }

    /// Takes `alias` away from a user.
    pub async fn delete_alias(&mut self, username: &str, alias: &str) -> Result<AliasChange> {
        let n = self
            .exec(
                "DELETE FROM aliases WHERE alias = ?1 AND name_key = ?2",
                [alias.to_lowercase(), username.to_lowercase()],
            )
            .await?;
        if n == 0 {
            return Ok(AliasChange::Missing);
        }
        self.bump_version("aliases").await?;
        Ok(AliasChange::Done)
    }

    /// Renames an alias, keeping its user.
    pub async fn rename_alias(&mut self, old_alias: &str, new_alias: &str) -> Result<AliasChange> {
        let (old, new) = (old_alias.to_lowercase(), new_alias.to_lowercase());
        if self.alias_owner_tx(&old).await?.is_none() {
            return Ok(AliasChange::Missing);
        }
        if old != new {
            if let Some((_, display)) = self.alias_owner_tx(&new).await? {
                return Ok(AliasChange::TakenBy(display));
            }
            self.exec("UPDATE aliases SET alias = ?2 WHERE alias = ?1", [old.as_str(), new.as_str()]).await?;
            self.bump_version("aliases").await?;
        }
        Ok(AliasChange::Done)
    }

    /// Adds a trigger phrase (lowercased, trimmed). True when it was new.
    pub async fn add_phrase(&mut self, phrase: &str) -> Result<bool> {
        let n = self
            .exec("INSERT OR IGNORE INTO kudos_phrases(phrase) VALUES (?1)", [phrase.trim().to_lowercase()])
            .await?;
        if n > 0 {
            self.bump_version("phrases").await?;
        }
        Ok(n > 0)
    }

    /// Removes a trigger phrase. True when it was there.
    pub async fn remove_phrase(&mut self, phrase: &str) -> Result<bool> {
        let n = self.exec("DELETE FROM kudos_phrases WHERE phrase = ?1", [phrase.trim().to_lowercase()]).await?;
        if n > 0 {
            self.bump_version("phrases").await?;
        }
        Ok(n > 0)
    }
}
