//! Mapping between element trees and typed MANSCDP records.
//!
//! Records are declared with `record!`, which lists each field's element
//! name (plus accepted misspellings) and kind: `leaf` (`Option<T>` text
//! value), `rec` (`Option<R>` nested record), `list` (`Option<ItemList<R>>`
//! with a `Num` attribute and `Item` children) or `many` (`Vec<T>` repeated
//! leaf). Reading is order-insensitive and lenient: names matched only
//! case-insensitively or through an alias give a finding; unparseable values
//! and unknown elements are kept in the record's `extras` so that nothing a
//! peer sent is lost when the record is encoded again. Writing uses the
//! declaration order, then `extras`.

use super::element::Element;
use super::finding::{Finding, FindingCode};
use serde::{Deserialize, Serialize};

/// A note produced while parsing a value leniently.
#[doc(hidden)]
pub struct Note {
    pub code: FindingCode,
    pub message: String,
}

/// A text value of a leaf element.
pub trait XmlValue: Sized {
    /// Parse element text. `None` when the text is not a value of this type.
    #[doc(hidden)]
    fn from_xml(text: &str) -> Option<(Self, Option<Note>)>;
    /// Text written for this value.
    fn to_xml(&self) -> String;
}

impl XmlValue for String {
    fn from_xml(text: &str) -> Option<(Self, Option<Note>)> {
        Some((text.to_owned(), None))
    }
    fn to_xml(&self) -> String {
        self.clone()
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl XmlValue for $t {
            fn from_xml(text: &str) -> Option<(Self, Option<Note>)> {
                let t = text.trim();
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    return None;
                }
                t.parse().ok().map(|v| (v, None))
            }
            fn to_xml(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64, i32, i64);

/// Declares a string enumeration with an `Other` variant that keeps any
/// value outside the set verbatim.
macro_rules! xml_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident { $( $(#[$vm:meta])* $var:ident = $s:literal ),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vm])* $var, )*
            /// A value outside the defined set, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The defined values, as written on the wire.
            pub const VALUES: &'static [&'static str] = &[$($s),*];

            /// Wire text of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$var => $s, )*
                    $name::Other(s) => s,
                }
            }

            /// Exact match, else case-insensitive match (flag `true`), else `Other`.
            pub fn parse_lenient(s: &str) -> (Self, bool) {
                $( if s == $s { return ($name::$var, false); } )*
                $( if s.trim().eq_ignore_ascii_case($s) { return ($name::$var, true); } )*
                ($name::Other(s.to_owned()), false)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::parse_lenient(s).0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(Self::parse_lenient(&s).0)
            }
        }

        impl super::fields::XmlValue for $name {
            fn from_xml(text: &str) -> Option<(Self, Option<super::fields::Note>)> {
                let (v, case) = Self::parse_lenient(text);
                let note = if case {
                    Some(super::fields::Note {
                        code: super::finding::FindingCode::ValueCase,
                        message: format!("{:?} read as {:?}", text, v.as_str()),
                    })
                } else if let $name::Other(o) = &v {
                    Some(super::fields::Note {
                        code: super::finding::FindingCode::ValueOutOfSet,
                        message: format!("{:?} is not one of {:?}", o, Self::VALUES),
                    })
                } else {
                    None
                };
                Some((v, note))
            }
            fn to_xml(&self) -> String {
                self.as_str().to_owned()
            }
        }
    };
}
pub(crate) use xml_enum;

/// Reads a record's fields out of an element's children.
pub struct FieldReader<'a> {
    slots: Vec<Slot>,
    path: String,
    findings: &'a mut Vec<Finding>,
}

#[derive(PartialEq)]
enum SlotState {
    Free,
    Used,
    Rejected,
}

struct Slot {
    el: Element,
    state: SlotState,
}

impl<'a> FieldReader<'a> {
    pub(crate) fn new(
        children: Vec<Element>,
        path: String,
        findings: &'a mut Vec<Finding>,
    ) -> Self {
        FieldReader {
            slots: children
                .into_iter()
                .map(|el| Slot {
                    el,
                    state: SlotState::Free,
                })
                .collect(),
            path,
            findings,
        }
    }

    /// Path of the element being read.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// True if a free child matches `name` (any case).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.slots
            .iter()
            .any(|s| s.state == SlotState::Free && s.el.name.eq_ignore_ascii_case(name))
    }

    /// Index of the first free child matching `name`: exact, then alias, then case-insensitive.
    fn find(&mut self, name: &str, aliases: &[&str]) -> Option<usize> {
        let free = |s: &Slot| s.state == SlotState::Free;
        if let Some(i) = self.slots.iter().position(|s| free(s) && s.el.name == name) {
            return Some(i);
        }
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| free(s) && aliases.contains(&s.el.name.as_str()))
        {
            let found = self.slots[i].el.name.clone();
            self.findings.push(FindingCode::ElementAlias.at(
                format!("{}/{}", self.path, found),
                format!("<{found}> read as <{name}>"),
            ));
            return Some(i);
        }
        let i = self.slots.iter().position(|s| {
            free(s)
                && (s.el.name.eq_ignore_ascii_case(name)
                    || aliases.iter().any(|a| s.el.name.eq_ignore_ascii_case(a)))
        })?;
        let found = self.slots[i].el.name.clone();
        self.findings.push(FindingCode::ElementNameCase.at(
            format!("{}/{}", self.path, found),
            format!("<{found}> read as <{name}>"),
        ));
        Some(i)
    }

    fn take(&mut self, i: usize) -> Element {
        self.slots[i].state = SlotState::Used;
        std::mem::take(&mut self.slots[i].el)
    }

    /// Children not used by any field, in document order; reports each.
    pub(crate) fn finish(&mut self, known: &[&str]) -> Vec<Element> {
        let mut out = Vec::new();
        for s in std::mem::take(&mut self.slots) {
            match s.state {
                SlotState::Used => {}
                SlotState::Rejected => out.push(s.el),
                SlotState::Free => {
                    let path = format!("{}/{}", self.path, s.el.name);
                    if known.iter().any(|k| k.eq_ignore_ascii_case(&s.el.name)) {
                        self.findings.push(FindingCode::DuplicateElement.at(
                            path,
                            format!("second <{}> kept in extras; the first was used", s.el.name),
                        ));
                    } else {
                        self.findings.push(FindingCode::UnknownElement.at(
                            path,
                            format!("<{}> is not modelled; kept in extras", s.el.name),
                        ));
                    }
                    out.push(s.el);
                }
            }
        }
        out
    }

    fn parse_leaf<T: XmlValue>(&mut self, el: &Element, path: &str) -> Option<T> {
        if !el.children.is_empty() {
            self.findings.push(FindingCode::UnexpectedChildren.at(
                path,
                format!("<{}> should hold text, not elements", el.name),
            ));
            return None;
        }
        if !el.attrs.is_empty() {
            self.findings.push(FindingCode::AttributesIgnored.at(
                path,
                format!("attributes of <{}> are not modelled", el.name),
            ));
        }
        let (v, note) = T::from_xml(&el.text)?;
        if let Some(n) = note {
            self.findings.push(n.code.at(path, n.message));
        }
        Some(v)
    }

    /// Read an optional leaf value.
    pub(crate) fn leaf<T: XmlValue>(&mut self, name: &str, aliases: &[&str]) -> Option<T> {
        self.leaf_coded(name, aliases, FindingCode::InvalidValue)
    }

    /// Read an optional leaf value; an unparseable value is reported with `invalid`.
    pub(crate) fn leaf_coded<T: XmlValue>(
        &mut self,
        name: &str,
        aliases: &[&str],
        invalid: FindingCode,
    ) -> Option<T> {
        let i = self.find(name, aliases)?;
        let path = format!("{}/{}", self.path, name);
        let el = std::mem::take(&mut self.slots[i].el);
        match self.parse_leaf::<T>(&el, &path) {
            Some(v) => {
                self.slots[i].state = SlotState::Used;
                Some(v)
            }
            None => {
                if el.children.is_empty() {
                    self.findings.push(invalid.at(
                        &path,
                        format!(
                            "{:?} is not a valid <{name}> value; kept in extras",
                            el.text
                        ),
                    ));
                }
                self.slots[i].el = el;
                self.slots[i].state = SlotState::Rejected;
                None
            }
        }
    }

    /// Read every occurrence of a repeated leaf.
    pub(crate) fn many<T: XmlValue>(&mut self, name: &str, aliases: &[&str]) -> Vec<T> {
        let mut out = Vec::new();
        while self.find(name, aliases).is_some() {
            if let Some(v) = self.leaf(name, aliases) {
                out.push(v);
            }
        }
        out
    }

    /// Read an optional nested record.
    pub(crate) fn rec<R: Record>(&mut self, name: &str, aliases: &[&str]) -> Option<R> {
        let i = self.find(name, aliases)?;
        let el = self.take(i);
        let path = format!("{}/{}", self.path, name);
        Some(read_record(el, path, self.findings))
    }

    /// Read an optional `Num`-counted list of `Item` records.
    pub(crate) fn list<R: Record>(&mut self, name: &str, aliases: &[&str]) -> Option<ItemList<R>> {
        let i = self.find(name, aliases)?;
        let el = self.take(i);
        let path = format!("{}/{}", self.path, name);
        Some(read_list(el, path, self.findings))
    }
}

fn read_record<R: Record>(el: Element, path: String, findings: &mut Vec<Finding>) -> R {
    if !el.attrs.is_empty() {
        findings.push(FindingCode::AttributesIgnored.at(
            &path,
            format!("attributes of <{}> are not modelled", el.name),
        ));
    }
    let leaf_text = el.children.is_empty() && !el.text.trim().is_empty();
    let text = el.text.clone();
    let mut r = FieldReader::new(el.children, path, findings);
    let mut rec = R::read(&mut r);
    if leaf_text {
        // A record element holding bare text: keep the text so it is not lost.
        rec.extras_mut().push(Element::leaf("#text", text));
        r.push(FindingCode::StrayText.at(
            r.path().to_owned(),
            "record element holds text instead of elements; kept as #text in extras",
        ));
    }
    rec
}

fn read_list<R: Record>(el: Element, path: String, findings: &mut Vec<Finding>) -> ItemList<R> {
    let mut num = None;
    let mut other_attrs = false;
    let mut saw_num = false;
    for (k, v) in &el.attrs {
        if k == "Num" || k.eq_ignore_ascii_case("num") {
            saw_num = true;
            match v.trim().parse::<u32>() {
                Ok(n) => num = Some(n),
                Err(_) => findings.push(FindingCode::ListNumInvalid.at(
                    format!("{path}@{k}"),
                    format!("Num=\"{v}\" is not an integer"),
                )),
            }
            if k != "Num" {
                findings.push(
                    FindingCode::ElementNameCase
                        .at(format!("{path}@{k}"), format!("attribute {k} read as Num")),
                );
            }
        } else {
            other_attrs = true;
        }
    }
    if !saw_num {
        findings.push(
            FindingCode::ListNumMissing.at(&path, format!("<{}> has no Num attribute", el.name)),
        );
    }
    if other_attrs {
        findings.push(FindingCode::AttributesIgnored.at(
            &path,
            format!(
                "attributes of <{}> other than Num are not modelled",
                el.name
            ),
        ));
    }
    let mut items = Vec::new();
    let mut extras = Vec::new();
    for child in el.children {
        if child.name.eq_ignore_ascii_case("Item") {
            let item_path = format!("{path}/Item[{}]", items.len());
            if child.name != "Item" {
                findings.push(
                    FindingCode::ElementNameCase
                        .at(&item_path, format!("<{}> read as <Item>", child.name)),
                );
            }
            items.push(read_record(child, item_path, findings));
        } else {
            findings.push(FindingCode::UnknownElement.at(
                format!("{path}/{}", child.name),
                format!(
                    "<{}> inside a list is not an Item; kept in extras",
                    child.name
                ),
            ));
            extras.push(child);
        }
    }
    if let Some(n) = num {
        if n as usize != items.len() {
            findings.push(FindingCode::ListNumMismatch.at(
                format!("{path}@Num"),
                format!("Num=\"{n}\" but {} Item element(s)", items.len()),
            ));
        }
    }
    ItemList { num, items, extras }
}

/// Writers for each field kind, used by `record!`.
pub(crate) mod write {
    use super::{Element, ItemList, Record, XmlValue};

    pub fn leaf<T: XmlValue>(v: &Option<T>, name: &str, out: &mut Vec<Element>) {
        if let Some(v) = v {
            out.push(Element::leaf(name, v.to_xml()));
        }
    }

    pub fn many<T: XmlValue>(v: &[T], name: &str, out: &mut Vec<Element>) {
        out.extend(v.iter().map(|v| Element::leaf(name, v.to_xml())));
    }

    pub fn rec<R: Record>(v: &Option<R>, name: &str, out: &mut Vec<Element>) {
        if let Some(r) = v {
            out.push(r.to_element(name));
        }
    }

    pub fn list<R: Record>(v: &Option<ItemList<R>>, name: &str, out: &mut Vec<Element>) {
        if let Some(l) = v {
            out.push(l.to_element(name));
        }
    }
}

/// A typed group of child elements.
pub trait Record: Sized + Default {
    /// Element names of the record's fields, canonical spelling.
    const FIELDS: &'static [&'static str];
    /// Read fields from the reader; unused children go to `extras`.
    #[doc(hidden)]
    fn read(r: &mut FieldReader<'_>) -> Self;
    /// Append the record's child elements in canonical order.
    fn write_children(&self, out: &mut Vec<Element>);
    /// Elements kept verbatim because the model does not define them.
    fn extras(&self) -> &[Element];
    /// Mutable access to `extras`.
    fn extras_mut(&mut self) -> &mut Vec<Element>;

    /// This record as an element named `name`.
    fn to_element(&self, name: &str) -> Element {
        let mut children = Vec::new();
        self.write_children(&mut children);
        Element::parent(name, children)
    }
}

/// A list element such as `<DeviceList Num="2">` holding `<Item>` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct ItemList<T> {
    /// The `Num` attribute as sent (`None`: absent or not an integer).
    /// [`ItemList::new`] sets it to the item count; set it to anything to
    /// build a deliberately inconsistent message.
    pub num: Option<u32>,
    pub items: Vec<T>,
    /// Non-`Item` children, kept verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<Element>,
}

impl<T> Default for ItemList<T> {
    fn default() -> Self {
        ItemList {
            num: Some(0),
            items: Vec::new(),
            extras: Vec::new(),
        }
    }
}

impl<T> ItemList<T> {
    /// A consistent list: `Num` equals the number of items.
    pub fn new(items: Vec<T>) -> Self {
        ItemList {
            num: Some(items.len() as u32),
            items,
            extras: Vec::new(),
        }
    }

    /// True when `Num` is present and equals the item count.
    pub fn is_consistent(&self) -> bool {
        self.num == Some(self.items.len() as u32)
    }
}

impl<T: Record> ItemList<T> {
    /// This list as an element named `name`.
    pub fn to_element(&self, name: &str) -> Element {
        let mut children: Vec<Element> = self.items.iter().map(|i| i.to_element("Item")).collect();
        children.extend(self.extras.iter().cloned());
        Element {
            name: name.to_owned(),
            attrs: self
                .num
                .map(|n| vec![("Num".to_owned(), n.to_string())])
                .unwrap_or_default(),
            text: String::new(),
            children,
        }
    }
}

/// Declares a record struct with its field-to-element mapping.
macro_rules! record {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $(
                $(#[$fm:meta])*
                $xml:literal $(| $alias:literal)* => $kind:ident $field:ident : $ty:ty;
            )*
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(default)]
                pub $field: $ty,
            )*
            /// Child elements the model does not define, kept verbatim in arrival order.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub extras: Vec<super::element::Element>,
        }

        impl super::fields::Record for $name {
            const FIELDS: &'static [&'static str] = &[$($xml, $($alias,)*)*];

            fn read(r: &mut super::fields::FieldReader<'_>) -> Self {
                let mut out = Self::default();
                $( out.$field = r.$kind($xml, &[$($alias),*]); )*
                out.extras = r.finish(Self::FIELDS);
                out
            }

            fn write_children(&self, out: &mut Vec<super::element::Element>) {
                $( super::fields::write::$kind(&self.$field, $xml, out); )*
                out.extend(self.extras.iter().cloned());
            }

            fn extras(&self) -> &[super::element::Element] {
                &self.extras
            }

            fn extras_mut(&mut self) -> &mut Vec<super::element::Element> {
                &mut self.extras
            }
        }
    };
}
pub(crate) use record;
