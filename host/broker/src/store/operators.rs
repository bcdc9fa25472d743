//! Operator accounts.

use lifeline_protocol::OperatorProfile;

use super::sql::{DbError, Row, Stmt, Value, vals};
use super::{OperatorRow, Store, StoreError};

fn operator_row(r: &Row) -> Result<OperatorRow, DbError> {
    Ok(OperatorRow {
        id: r.int(0)?,
        password_hash: r.text(1)?,
        profile: OperatorProfile {
            username: r.text(2)?,
            name: r.text(3)?,
            email: r.text(4)?,
            title: r.text(5)?,
        },
    })
}

impl Store {
    pub fn add_operator(&self, hash: &str, p: &OperatorProfile) -> Result<i64, StoreError> {
        let res = self.row(Stmt::new(
            "INSERT INTO operators (username, password_hash, name, email, title, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            vals![
                &p.username,
                hash,
                &p.name,
                &p.email,
                &p.title,
                lifeline_core::time::now_millis()
            ],
        ));
        match res {
            Ok(Some(r)) => Ok(r.int(0)?),
            Ok(None) => Err(DbError::NoRow("the new operator's id").into()),
            Err(StoreError::Db(e)) if e.is_unique_violation() => {
                Err(StoreError::DuplicateOperator(p.username.clone()))
            }
            Err(e) => Err(e),
        }
    }

    fn operator_where(&self, clause: &str, arg: Value) -> Result<Option<OperatorRow>, StoreError> {
        let sql = format!(
            "SELECT id, password_hash, username, name, email, title FROM operators WHERE {clause}"
        );
        self.row(Stmt::new(sql, vec![arg]))?
            .map(|r| operator_row(&r))
            .transpose()
            .map_err(Into::into)
    }

    pub fn operator_by_name(&self, username: &str) -> Result<Option<OperatorRow>, StoreError> {
        self.operator_where("username = ?1", username.into())
    }

    pub fn operator_by_id(&self, id: i64) -> Result<Option<OperatorRow>, StoreError> {
        self.operator_where("id = ?1", id.into())
    }

    pub fn list_operators(&self) -> Result<Vec<OperatorProfile>, StoreError> {
        let rows = self.rows(Stmt::new(
            "SELECT username, name, email, title FROM operators ORDER BY username",
            vec![],
        ))?;
        let profile = |r: &Row| {
            Ok::<_, DbError>(OperatorProfile {
                username: r.text(0)?,
                name: r.text(1)?,
                email: r.text(2)?,
                title: r.text(3)?,
            })
        };
        Ok(rows.iter().map(profile).collect::<Result<_, _>>()?)
    }

    /// Sets an operator's password hash and, in the same transaction,
    /// revokes every login token of that operator except `keep` (the
    /// token of the connection that changed its own password, if any).
    pub fn set_password_hash(
        &self,
        id: i64,
        hash: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        self.run(vec![
            Stmt::new(
                "UPDATE operators SET password_hash = ?2 WHERE id = ?1",
                vals![id, hash],
            ),
            Stmt::new(
                "DELETE FROM login_tokens WHERE operator_id = ?1 AND token_hash IS DISTINCT FROM ?2",
                vals![id, keep],
            ),
        ])?;
        Ok(())
    }

    pub fn update_profile(&self, id: i64, p: &OperatorProfile) -> Result<(), StoreError> {
        self.one(Stmt::new(
            "UPDATE operators SET name = ?2, email = ?3, title = ?4 WHERE id = ?1",
            vals![id, &p.name, &p.email, &p.title],
        ))?;
        Ok(())
    }
}
