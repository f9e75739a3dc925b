//! CSV cells a spreadsheet will not run: a text cell that begins with `=`, `+`, `-`, `@`, a tab
//! or a carriage return (a formula, as in a user agent `=HYPERLINK(…)` sent by anyone who loads
//! a pixel) gets a leading `'`, as OWASP recommends for CSV injection. Numbers are left alone.
//!
//! [`Cells`] wraps a row for `csv::Writer::serialize`: the row's fields are written as they
//! are, each text value (also inside `Some`) neutralised on the way.

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// A row whose text cells are written formula-safe.
pub struct Cells<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Cells<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Neutral(s))
    }
}

/// The text as a spreadsheet should show it.
pub fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

struct Neutral<S>(S);

struct Fields<F>(F);

impl<F: SerializeStruct> SerializeStruct for Fields<F> {
    type Ok = F::Ok;
    type Error = F::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), F::Error> {
        self.0.serialize_field(key, &Cells(value))
    }

    fn end(self) -> Result<F::Ok, F::Error> {
        self.0.end()
    }
}

/// Forwards one method of the serializer as it is.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.0.$name($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Neutral<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = Fields<S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(&neutralised(v))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Cells(value))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Fields)
    }

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Cells(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Cells(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct_variant(name, index, variant, len)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Row {
        id: i64,
        delta: i64,
        agent: String,
        client: Option<String>,
        ip: Option<String>,
    }

    #[test]
    fn formula_cells_are_neutralised_and_numbers_kept() {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in [
            Row {
                id: 1,
                delta: -3,
                agent: "=HYPERLINK(\"https://evil.example\",\"x\")".into(),
                client: Some("@SUM(A1)".into()),
                ip: None,
            },
            Row {
                id: 2,
                delta: 4,
                agent: "Mozilla/5.0".into(),
                client: Some("+1".into()),
                ip: Some("-2+3".into()),
            },
        ] {
            w.serialize(Cells(&row)).unwrap();
        }
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "id,delta,agent,client,ip\n\
             1,-3,\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"x\"\")\",'@SUM(A1),\n\
             2,4,Mozilla/5.0,'+1,'-2+3\n"
        );
        assert_eq!(neutralised("\tcmd"), "'\tcmd");
        assert_eq!(neutralised("plain"), "plain");
    }
}
