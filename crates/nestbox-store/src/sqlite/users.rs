//! [`UserRepo`] on SQLite: the `users`, `tokens` and `tasks_users` tables of
//! `migrations/sqlite/0002_users.sql`.

use async_trait::async_trait;
use nestbox_core::users::{NewToken, NewUser, Token, TokenKind, User, UserRepo};
use nestbox_core::{Error, Result};
use nestbox_types::{TaskId, Timestamp};
use sqlx::Row;

use super::SqliteRepo;
use crate::rows::{token_from_row, user_from_row};

const USER_COLUMNS: &str = "SELECT id, username, password_hash, is_staff, is_active, \
     subscription, roles, token_generation, created_on FROM users";
const TOKEN_COLUMNS: &str = "SELECT id, user_id, kind, name, secret_hash, privileges, \
     created_on, revoked_on FROM tokens";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[async_trait]
impl UserRepo for SqliteRepo {
    async fn add_user(&self, user: &NewUser) -> Result<User> {
        let roles = serde_json::to_string(&user.roles).map_err(Error::store)?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (username, password_hash, is_staff, subscription, roles, \
             created_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING {}",
            &USER_COLUMNS["SELECT ".len()..USER_COLUMNS.len() - " FROM users".len()]
        )))
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(i64::from(user.is_staff))
        .bind(&user.subscription)
        .bind(roles)
        .bind(Timestamp::now().0)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Invalid(format!("user {:?} already exists", user.username))
            } else {
                Error::store(e)
            }
        })?;
        user_from_row(&row)
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("{USER_COLUMNS} WHERE id = ?1")))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(Error::store)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{USER_COLUMNS} WHERE username = ?1"
        )))
        .bind(username)
        .fetch_optional(&self.reader)
        .await
        .map_err(Error::store)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        sqlx::query(sqlx::AssertSqlSafe(format!("{USER_COLUMNS} ORDER BY id")))
            .fetch_all(&self.reader)
            .await
            .map_err(Error::store)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn user_count(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.reader)
            .await
            .map_err(Error::store)
    }

    async fn set_active(&self, id: i64, active: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET is_active = ?2 WHERE id = ?1")
            .bind(id)
            .bind(i64::from(active))
            .execute(&self.writer)
            .await
            .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_password(&self, id: i64, password_hash: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = ?2 WHERE id = ?1")
            .bind(id)
            .bind(password_hash)
            .execute(&self.writer)
            .await
            .map_err(Error::store)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_token(&self, token: &NewToken) -> Result<i64> {
        // Idempotent on the secret: CAPE's get_or_create.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO tokens (user_id, kind, name, secret_hash, privileges, created_on) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (secret_hash) DO NOTHING RETURNING id",
        )
        .bind(token.user_id)
        .bind(token.kind.as_str())
        .bind(&token.name)
        .bind(&token.secret_hash)
        .bind(&token.privileges)
        .bind(Timestamp::now().0)
        .fetch_optional(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Invalid(format!(
                    "user {} already has a live {} credential named {:?}",
                    token.user_id,
                    token.kind.as_str(),
                    token.name
                ))
            } else {
                Error::store(e)
            }
        })?;
        match id {
            Some(id) => Ok(id),
            None => sqlx::query_scalar("SELECT id FROM tokens WHERE secret_hash = ?1")
                .bind(&token.secret_hash)
                .fetch_one(&self.writer)
                .await
                .map_err(Error::store),
        }
    }

    async fn token_by_hash(&self, kind: TokenKind, secret_hash: &str) -> Result<Option<Token>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TOKEN_COLUMNS} WHERE secret_hash = ?1 AND kind = ?2 AND revoked_on IS NULL"
        )))
        .bind(secret_hash)
        .bind(kind.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(Error::store)?
        .as_ref()
        .map(token_from_row)
        .transpose()
    }

    async fn user_by_token(&self, kind: TokenKind, secret_hash: &str) -> Result<Option<User>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{USER_COLUMNS} WHERE id = (SELECT user_id FROM tokens \
             WHERE secret_hash = ?1 AND kind = ?2 AND revoked_on IS NULL)"
        )))
        .bind(secret_hash)
        .bind(kind.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(Error::store)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn tokens(&self, user_id: i64) -> Result<Vec<Token>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TOKEN_COLUMNS} WHERE user_id = ?1 ORDER BY id"
        )))
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .map_err(Error::store)?
        .iter()
        .map(token_from_row)
        .collect()
    }

    async fn revoke_tokens(&self, user_id: i64, kind: TokenKind) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE tokens SET revoked_on = ?3 \
             WHERE user_id = ?1 AND kind = ?2 AND revoked_on IS NULL",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .bind(Timestamp::now().0)
        .execute(&mut *tx)
        .await
        .map_err(Error::store)?;
        sqlx::query("UPDATE users SET token_generation = token_generation + 1 WHERE id = ?1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(Error::store)?;
        tx.commit().await.map_err(Error::store)?;
        Ok(done.rows_affected())
    }

    async fn set_task_user(&self, task: TaskId, user_id: i64) -> Result<()> {
        if user_id == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO tasks_users (task_id, user_id) VALUES (?1, ?2) \
             ON CONFLICT (task_id) DO UPDATE SET user_id = excluded.user_id",
        )
        .bind(task.0)
        .bind(user_id)
        .execute(&self.writer)
        .await
        .map_err(Error::store)?;
        Ok(())
    }

    async fn task_user(&self, task: TaskId) -> Result<i64> {
        let row = sqlx::query("SELECT user_id FROM tasks_users WHERE task_id = ?1")
            .bind(task.0)
            .fetch_optional(&self.reader)
            .await
            .map_err(Error::store)?;
        Ok(match row {
            Some(r) => r.try_get("user_id").map_err(Error::store)?,
            None => 0,
        })
    }
}
