//! The macros that stamp out one `#[tokio::test]` per conformance function.
//!
//! They expand in the adapter crate, which therefore needs tokio as a
//! dev-dependency with the "macros" and "rt-multi-thread" features: the
//! tests run on a multi-threaded runtime so that racing calls really race.

/// Stamps out one test per listed function; each test builds its adapter
/// with the factory expression, coerces it to `Arc<$ty>` and calls the
/// function with `&*adapter` (`dyn_ref`) or the `Arc` itself (`arc`).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:expr; $ty:ty; $module:ident; $($how:ident $name:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let adapter: ::std::sync::Arc<$ty> = $factory.await;
                $crate::__conformance_tests!(@call $how $crate::testkit::$module::$name, adapter);
            }
        )+
    };
    (@call dyn_ref $f:path, $adapter:ident) => { $f(&*$adapter).await };
    (@call arc $f:path, $adapter:ident) => { $f($adapter).await };
}

/// One test per [`MessageStore`](crate::store::MessageStore) conformance
/// function ([`messages`](crate::testkit::messages) and
/// [`cursors`](crate::testkit::cursors)).
///
/// The argument is an expression, evaluated afresh for each test, whose
/// `.await` gives an `Arc` of the store (anything that coerces to
/// `Arc<dyn MessageStore>`):
///
/// ```ignore
/// chat_core::message_store_conformance!(async { std::sync::Arc::new(MemoryStore::new()) });
/// ```
#[macro_export]
macro_rules! message_store_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!($factory; dyn $crate::store::MessageStore; messages;
            dyn_ref append_stores_entry_and_moves_head,
            dyn_ref append_refuses_stale_ids_and_versions,
            dyn_ref append_dedups_by_sender_and_key,
            arc append_concurrent_duplicates_store_once,
            arc concurrent_appenders_form_one_chain,
            dyn_ref history_and_range_bounds,
            dyn_ref events_change_their_targets,
            dyn_ref remove_undoes_append,
            dyn_ref purge_deletes_up_to,
            dyn_ref message_store_ping_answers,
            dyn_ref append_after_follows_the_named_entry,
            dyn_ref intents_are_listed_in_order_and_cleared,
        );
        $crate::__conformance_tests!($factory; dyn $crate::store::MessageStore; cursors;
            dyn_ref append_moves_the_senders_cursors,
            dyn_ref ack_moves_device_and_user_cursors_forward,
            dyn_ref read_cursor_and_seq,
            dyn_ref start_member_and_user_cursors,
            dyn_ref devices_start_and_forget,
        );
    };
}

/// One test per [`ConversationStore`](crate::store::ConversationStore)
/// conformance function ([`conversations`](crate::testkit::conversations)).
/// The argument works as in [`message_store_conformance!`](crate::message_store_conformance).
#[macro_export]
macro_rules! conversation_store_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!($factory; dyn $crate::store::ConversationStore; conversations;
            dyn_ref create_group_and_read_back,
            dyn_ref create_group_rejects_taken_id,
            dyn_ref ensure_direct_is_idempotent,
            dyn_ref membership_add_remove_and_ban,
            dyn_ref departures_keep_the_latest_per_group,
            dyn_ref roles_and_settings,
            arc concurrent_add_member,
            dyn_ref invites_redeem_expire_revoke,
            arc concurrent_redeem_of_a_one_use_invite,
            dyn_ref conversation_store_ping_answers,
        );
    };
}

/// One test per [`AccountStore`](crate::store::AccountStore) conformance
/// function ([`accounts`](crate::testkit::accounts)). The argument works as
/// in [`message_store_conformance!`](crate::message_store_conformance).
#[macro_export]
macro_rules! account_store_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!($factory; dyn $crate::store::AccountStore; accounts;
            dyn_ref account_create_and_read,
            dyn_ref account_username_and_id_unique,
            arc account_concurrent_signups_one_wins,
            dyn_ref account_set_display_name,
            dyn_ref devices_create_list_touch_remove,
            dyn_ref blocks_one_way,
            dyn_ref account_store_ping_answers,
        );
    };
}

/// One test per [`PresenceStore`](crate::cluster::PresenceStore) conformance
/// function ([`presence`](crate::testkit::presence)). The argument works as
/// in [`message_store_conformance!`](crate::message_store_conformance); the
/// instance it gives must not be reaped by concurrent tests (see
/// [`presence_heartbeat_expiry_and_reap`](crate::testkit::presence::presence_heartbeat_expiry_and_reap)).
#[macro_export]
macro_rules! presence_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!($factory; dyn $crate::cluster::PresenceStore; presence;
            dyn_ref presence_counts_connections_across_nodes,
            dyn_ref presence_answers_in_order,
            dyn_ref presence_heartbeat_expiry_and_reap,
            dyn_ref presence_restore_sets_a_nodes_connections,
        );
    };
}

/// One test per [`Discovery`](crate::cluster::Discovery) conformance
/// function ([`discovery`](crate::testkit::discovery)). The argument works
/// as in [`message_store_conformance!`](crate::message_store_conformance);
/// each instance it gives must be empty and its own.
#[macro_export]
macro_rules! discovery_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!($factory; dyn $crate::cluster::Discovery; discovery;
            dyn_ref discovery_register_and_refresh,
            dyn_ref discovery_expiry_and_deregister,
            dyn_ref discovery_pick_least_loaded_live_node,
        );
    };
}

/// One test per [`NodeIds`](crate::cluster::NodeIds) conformance function
/// ([`lease`](crate::testkit::lease)). The argument works as in
/// [`message_store_conformance!`](crate::message_store_conformance); each
/// instance it gives must be its own, with no id claimed.
#[macro_export]
macro_rules! node_ids_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!($factory; dyn $crate::cluster::NodeIds; lease;
            arc node_ids_concurrent_claims_are_distinct,
            dyn_ref node_ids_a_held_id_is_refused_until_released,
            dyn_ref node_ids_a_lapsed_claim_is_free_and_renewal_says_so,
        );
    };
}

/// One test per [`Authenticator`](crate::auth::Authenticator) conformance
/// function ([`auth`](crate::testkit::auth)). The argument works as in
/// [`message_store_conformance!`](crate::message_store_conformance).
#[macro_export]
macro_rules! authenticator_conformance {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests!($factory; dyn $crate::auth::Authenticator; auth;
            dyn_ref auth_issue_and_verify,
        );
    };
}

/// One test per [`Bus`](crate::cluster::Bus) conformance function
/// ([`bus`](crate::testkit::bus)).
///
/// The argument is an expression, evaluated afresh for each test, whose
/// `.await` gives two [`BusNode`](crate::testkit::bus::BusNode)s of one
/// deployment (distinct node ids, not shared with concurrent tests):
///
/// ```ignore
/// chat_core::bus_conformance!(async {
///     let hub = MemoryBusHub::new();
///     (BusNode::new("a", hub.node("a")), BusNode::new("b", hub.node("b")))
/// });
/// ```
#[macro_export]
macro_rules! bus_conformance {
    ($factory:expr $(,)?) => {
        $crate::__bus_conformance!($factory;
            bus_delivers_to_subscribed_node_only,
            bus_delivers_to_every_subscriber_including_publisher,
            bus_unsubscribe_stops_delivery,
            bus_publish_to_several_topics,
            bus_keeps_publish_order,
        );
    };
}

/// The body of [`bus_conformance!`]: the factory gives a pair, not an `Arc`.
#[doc(hidden)]
#[macro_export]
macro_rules! __bus_conformance {
    ($factory:expr; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (a, b): ($crate::testkit::bus::BusNode, $crate::testkit::bus::BusNode) =
                    $factory.await;
                $crate::testkit::bus::$name(a, b).await
            }
        )+
    };
}
