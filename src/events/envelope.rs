//! The CloudEvents 1.0 envelope and the typed payload it carries.
//!
//! The envelope is serialised by hand rather than derived because `type` decides
//! how `data` is read: when `type` comes first (as faultline always writes it)
//! `data` is decoded straight into its Rust type; when a publisher puts `data`
//! first it is buffered once and decoded after. CloudEvents extension attributes
//! are accepted and ignored.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::decision::{
    BreakerDecision, ContainmentDecision, IncidentDecision, Prediction, RollbackDecision,
    RouteDecision,
};
use super::observation::{
    Actuation, Command, ConfigRecord, Deploy, Health, Request, Tick, Topology, Window,
};
use super::time::Timestamp;

/// CloudEvents version this contract follows.
pub const SPEC_VERSION: &str = "1.0";

/// One record of the log: an observation or a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique id; `Nats-Msg-Id` for dedupe. Decisions: `<agent>-<causeseq>-<n>`.
    pub id: String,
    /// Who produced it (`faultline/<agent>` for decisions).
    pub source: String,
    /// The service it is about.
    pub subject: String,
    /// Event time.
    pub time: Timestamp,
    /// Content type of `data`, as the publisher declared it.
    pub datacontenttype: Option<String>,
    /// Decisions: log sequence of the record that caused them.
    pub causeseq: Option<u64>,
    /// Decisions: id of the record that caused them.
    pub causeid: Option<String>,
    /// Typed payload; its variant is the CloudEvents `type`.
    pub data: Data,
}

macro_rules! event_types {
    ($( $variant:ident($ty:ty) = $name:literal, $decision:literal; )*) => {
        /// The CloudEvents `type` of a record.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventType { $(
            #[doc = concat!("`", $name, "`")]
            $variant,
        )* }

        /// A record's payload, by type.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Data { $(
            #[doc = concat!("`", $name, "`")]
            $variant($ty),
        )* }

        impl EventType {
            /// Every type, observations first.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The CloudEvents `type` string.
            pub fn name(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// Looks a `type` string up.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(EventType::$variant),)* _ => None }
            }

            /// Whether agents produce this type (publishers may not).
            pub fn is_decision(self) -> bool {
                match self { $(EventType::$variant => $decision,)* }
            }
        }

        impl Data {
            /// The type of this payload.
            pub fn event_type(&self) -> EventType {
                match self { $(Data::$variant(_) => EventType::$variant,)* }
            }

            fn serialize_inner<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $(Data::$variant(d) => d.serialize(s),)* }
            }

            fn deserialize_as<'de, D: Deserializer<'de>>(kind: EventType, d: D) -> Result<Self, D::Error> {
                match kind { $(EventType::$variant => <$ty>::deserialize(d).map(Data::$variant),)* }
            }

            /// The JSON Schema of this type's `data`.
            pub fn schema_for(kind: EventType, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                match kind { $(EventType::$variant => generator.subschema_for::<$ty>(),)* }
            }
        }
    };
}

event_types! {
    Request(Request) = "faultline.request", false;
    Window(Window) = "faultline.window", false;
    Health(Health) = "faultline.health", false;
    Deploy(Deploy) = "faultline.deploy", false;
    Topology(Topology) = "faultline.topology", false;
    Actuation(Actuation) = "faultline.actuation", false;
    Command(Command) = "faultline.command", false;
    Tick(Tick) = "faultline.tick", false;
    Config(ConfigRecord) = "faultline.config", false;
    Prediction(Prediction) = "faultline.prediction", true;
    Breaker(BreakerDecision) = "faultline.breaker", true;
    Route(RouteDecision) = "faultline.route", true;
    Rollback(RollbackDecision) = "faultline.rollback", true;
    Containment(ContainmentDecision) = "faultline.containment", true;
    Incident(IncidentDecision) = "faultline.incident", true;
}

impl EventType {
    /// The last token of the type (`request`), used in subjects.
    pub fn kind(self) -> &'static str {
        self.name().trim_start_matches("faultline.")
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Event {
    /// The CloudEvents `type`.
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }
}

struct DataRef<'a>(&'a Data);

impl Serialize for DataRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_inner(s)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let decision = self.causeseq.is_some() || self.causeid.is_some();
        let len = 7 + usize::from(self.datacontenttype.is_some()) + if decision { 2 } else { 0 };
        let mut st = s.serialize_struct("Event", len)?;
        st.serialize_field("specversion", SPEC_VERSION)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("source", &self.source)?;
        st.serialize_field("type", self.event_type().name())?;
        st.serialize_field("subject", &self.subject)?;
        st.serialize_field("time", &self.time)?;
        if let Some(ct) = &self.datacontenttype {
            st.serialize_field("datacontenttype", ct)?;
        }
        if decision {
            st.serialize_field("causeseq", &self.causeseq)?;
            st.serialize_field("causeid", &self.causeid)?;
        }
        st.serialize_field("data", &DataRef(&self.data))?;
        st.end()
    }
}

struct DataSeed(EventType);

impl<'de> DeserializeSeed<'de> for DataSeed {
    type Value = Data;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        Data::deserialize_as(self.0, d)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Specversion,
    Id,
    Source,
    Type,
    Subject,
    Time,
    Datacontenttype,
    Causeseq,
    Causeid,
    Data,
    #[serde(other)]
    Extension,
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudEvents 1.0 event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut specversion: Option<String> = None;
        let mut id = None;
        let mut source = None;
        let mut kind: Option<EventType> = None;
        let mut subject = None;
        let mut time = None;
        let mut datacontenttype = None;
        let mut causeseq = None;
        let mut causeid = None;
        let mut data: Option<Data> = None;
        let mut buffered: Option<serde_json::Value> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Specversion => specversion = Some(map.next_value()?),
                Field::Id => id = Some(map.next_value()?),
                Field::Source => source = Some(map.next_value()?),
                Field::Type => {
                    let name: std::borrow::Cow<'de, str> = map.next_value::<CowStr<'de>>()?.0;
                    kind = Some(EventType::from_name(&name).ok_or_else(|| {
                        de::Error::custom(format_args!(
                            "unknown type {name:?}; expected one of {}",
                            EventType::ALL
                                .iter()
                                .map(|t| t.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?);
                }
                Field::Subject => subject = Some(map.next_value()?),
                Field::Time => time = Some(map.next_value()?),
                Field::Datacontenttype => datacontenttype = map.next_value()?,
                Field::Causeseq => causeseq = map.next_value()?,
                Field::Causeid => causeid = map.next_value()?,
                Field::Data => match kind {
                    Some(k) => data = Some(map.next_value_seed(DataSeed(k))?),
                    None => buffered = Some(map.next_value()?),
                },
                Field::Extension => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let specversion = specversion.ok_or_else(|| de::Error::missing_field("specversion"))?;
        if specversion != SPEC_VERSION {
            return Err(de::Error::custom(format_args!(
                "specversion {specversion:?} is not supported; expected \"1.0\""
            )));
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        let data = match (data, buffered) {
            (Some(d), _) => d,
            (None, Some(v)) => Data::deserialize_as(kind, v).map_err(de::Error::custom)?,
            (None, None) if kind == EventType::Tick => Data::Tick(Tick {}),
            (None, None) => return Err(de::Error::missing_field("data")),
        };
        Ok(Event {
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            source: source.ok_or_else(|| de::Error::missing_field("source"))?,
            subject: subject.ok_or_else(|| de::Error::missing_field("subject"))?,
            time: time.ok_or_else(|| de::Error::missing_field("time"))?,
            datacontenttype,
            causeseq,
            causeid,
            data,
        })
    }
}

/// A string that borrows when the input allows it.
struct CowStr<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}
