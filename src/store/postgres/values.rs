//! How mailbeacon's [`Value`]s travel to and from PostgreSQL's binary formats.

use super::Value;
use postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ => i.to_string().to_sql(&Type::TEXT, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(&Type::FLOAT8, out),
            },
            Value::Text(s) => match *ty {
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
            },
            Value::Blob(b) => b.as_slice().to_sql(&Type::BYTEA, out),
            // Each element as the array's member type, as for a scalar parameter of that type.
            Value::List(items) => match ty.kind() {
                Kind::Array(_) => items.to_sql(ty, out),
                _ => Err(format!("a list bound to a parameter of type {ty}, not an array").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::NUMERIC => numeric(raw)?,
            Type::JSONB => Value::Text(String::from_utf8(raw.get(1..).unwrap_or(&[]).to_vec())?),
            _ => Value::Text(String::from_utf8(raw.to_vec())?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's binary NUMERIC (what `sum` of BIGINT gives): base-10000 digits with a weight.
fn numeric(raw: &[u8]) -> Result<Value, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<i16, Box<dyn std::error::Error + Sync + Send>> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("short NUMERIC")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign) = (word(0)? as usize, word(1)? as i32, word(2)? as u16);
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut int: i128 = 0;
    let mut value = 0f64;
    let mut fraction = false;
    for i in 0..ndigits {
        let digit = word(4 + i)? as i128;
        let power = weight - i as i32;
        value += digit as f64 * 10000f64.powi(power);
        if power >= 0 {
            int = int * 10000 + digit;
        } else if digit != 0 {
            fraction = true;
        }
    }
    // Trailing zero groups are not sent: scale what was.
    let sent_to = weight - ndigits as i32 + 1;
    for _ in 0..sent_to.max(0) {
        int *= 10000;
    }
    let negative = sign == 0x4000;
    Ok(match (fraction, i64::try_from(int)) {
        (false, Ok(i)) => Value::Int(if negative { -i } else { i }),
        _ => Value::Real(if negative { -value } else { value }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_decodes_integers_and_fractions() {
        // 20000 = one group "2" with weight 1; -12345678 = groups 1234, 5678 with weight 1.
        let enc = |ndigits: i16, weight: i16, sign: u16, digits: &[i16]| -> Vec<u8> {
            let mut v = Vec::new();
            for w in [ndigits, weight, sign as i16, 0]
                .into_iter()
                .chain(digits.iter().copied())
            {
                v.extend_from_slice(&w.to_be_bytes());
            }
            v
        };
        assert_eq!(numeric(&enc(1, 1, 0, &[2])).unwrap(), Value::Int(20000));
        assert_eq!(
            numeric(&enc(2, 1, 0x4000, &[1234, 5678])).unwrap(),
            Value::Int(-12345678)
        );
        assert_eq!(numeric(&enc(0, 0, 0, &[])).unwrap(), Value::Int(0));
        assert_eq!(
            numeric(&enc(2, 0, 0, &[1, 5000])).unwrap(),
            Value::Real(1.5)
        );
    }
}
