//! Any valid event round-trips through both codecs unchanged.

#[path = "support/gen.rs"]
mod gen;

use faultline::events::validate::{validate, validate_input};
use faultline::events::Codec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn observations_round_trip(event in gen::observation()) {
        validate_input(&event).unwrap();
        for codec in [Codec::Json, Codec::MsgPack] {
            let bytes = codec.encode(&event);
            let back = codec.decode(&bytes).unwrap();
            prop_assert_eq!(&back, &event);
            prop_assert_eq!(codec.encode(&back), bytes);
        }
    }

    #[test]
    fn decisions_round_trip(event in gen::decision()) {
        validate(&event).unwrap();
        for codec in [Codec::Json, Codec::MsgPack] {
            let back = codec.decode(&codec.encode(&event)).unwrap();
            prop_assert_eq!(back, event.clone());
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Codec::Json.decode(&bytes);
        let _ = Codec::MsgPack.decode(&bytes);
    }
}
