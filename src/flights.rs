//! Request coalescing ("singleflight"): while a call with a given key is in flight on a
//! supervisor, further calls with that key wait for its answer instead of running the operation.
//!
//! - The first call of a key to take a bulkhead slot becomes the **leader**: it registers a
//!   *flight* under the key and runs through the attempt loop like any call.
//! - A later call of the same key (and the same answer type) finds the flight and becomes a
//!   **follower**: it registers a one-shot channel in the flight and waits, taking no
//!   bulkhead slot and asking nothing of the breaker.
//! - When the leader has its answer (before its own fallback runs), it removes the flight and
//!   sends each follower a clone of the answer, value or error.
//! - A leader dropped by its caller drops the flight: its followers' channels close, and each
//!   follower starts over — the first to take a slot leads a new flight, the others follow it.
//! - A follower dropped by its caller drops its receiver; the leader skips it, and its place in
//!   the flight's list is reclaimed the next time the list would grow.
//!
//! A flight exists only while its leader holds a bulkhead slot (it is registered after the
//! slot is taken and removed before the slot is given back), so a supervisor never has more
//! than `max_in_flight` flights. Keys are the caller's; they never reach a metric label.
//!
//! The flights are kept type-erased (`Box<dyn Any + Send>`) in one map per supervisor: the
//! calls of one key may have different answer types, and a call whose key is taken by a flight
//! of another type simply runs on its own. What needs the answer to be `Clone + Send +
//! 'static` (making and finding a typed flight, cloning the answer) is compiled where
//! [`Call::coalesce`](crate::messages::Call::coalesce) states those bounds, into the function
//! pointers of a [`Coalesce`], so the attempt loop itself stays free of them.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use crate::error::CallError;

/// A call's answer, as shared with its followers.
pub(crate) type Answer<T, E> = Result<T, CallError<E>>;

/// The flights in progress on one supervisor, by key.
#[derive(Default)]
pub(crate) struct Flights {
    inner: Mutex<FlightMap>,
}

#[derive(Default)]
struct FlightMap {
    /// Key → (the flight's id, the typed flight).
    flights: HashMap<String, (u64, Box<dyn Any + Send>)>,
    next_id: u64,
}

impl fmt::Debug for Flights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flights")
            .field("in_flight", &self.len())
            .finish()
    }
}

impl Flights {
    fn lock(&self) -> MutexGuard<'_, FlightMap> {
        // Nothing panics while the lock is held; a poisoned lock still holds a sound map.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Flights in progress.
    pub(crate) fn len(&self) -> usize {
        self.lock().flights.len()
    }
}

/// One flight: the followers waiting for the leader's answer.
struct Flight<T, E> {
    followers: Vec<oneshot::Sender<Answer<T, E>>>,
}

impl<T, E> Flight<T, E> {
    /// Adds a follower; reclaims the places of followers that were dropped whenever the list
    /// would grow, so it holds at most about twice the followers still waiting.
    fn follow(&mut self) -> oneshot::Receiver<Answer<T, E>> {
        if self.followers.len() == self.followers.capacity() {
            self.followers.retain(|follower| !follower.is_closed());
        }
        let (sender, receiver) = oneshot::channel();
        self.followers.push(sender);
        receiver
    }
}

/// What a call finds under its key.
pub(crate) enum Joined<T, E> {
    /// A flight of the same type: wait for its answer here.
    Follow(oneshot::Receiver<Answer<T, E>>),
    /// No flight: this call now leads the flight with this id (only when asked to lead).
    Lead(u64),
    /// No flight, and this call was not asked to lead one.
    Vacant,
    /// A flight of another answer type holds the key: run alone, uncoalesced.
    Alone,
}

/// A call's coalescing key, with the typed operations on its flight.
pub(crate) struct Coalesce<T, E> {
    key: String,
    join: fn(&Flights, &str, bool) -> Joined<T, E>,
    land: fn(&Flights, &str, u64, Option<&Answer<T, E>>),
}

impl<T, E> fmt::Debug for Coalesce<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Coalesce").field(&self.key).finish()
    }
}

impl<T, E> Coalesce<T, E>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    pub(crate) fn new(key: String) -> Self {
        Coalesce {
            key,
            join: join::<T, E>,
            land: land::<T, E>,
        }
    }
}

impl<T, E> Coalesce<T, E> {
    /// The key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Joins the flight of this key if there is one; with `lead`, starts one if there is not.
    pub(crate) fn join(&self, flights: &Flights, lead: bool) -> Joined<T, E> {
        (self.join)(flights, &self.key, lead)
    }

    /// Ends the flight `id`: its followers get a clone of `answer`, or, with `None` (the
    /// leader was cancelled), their channels close and they start over.
    pub(crate) fn land(&self, flights: &Flights, id: u64, answer: Option<&Answer<T, E>>) {
        (self.land)(flights, &self.key, id, answer);
    }
}

fn join<T, E>(flights: &Flights, key: &str, lead: bool) -> Joined<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    let mut map = flights.lock();
    if let Some((_, flight)) = map.flights.get_mut(key) {
        return match flight.downcast_mut::<Flight<T, E>>() {
            Some(flight) => Joined::Follow(flight.follow()),
            None => Joined::Alone,
        };
    }
    if !lead {
        return Joined::Vacant;
    }
    let id = map.next_id;
    map.next_id += 1;
    let flight: Flight<T, E> = Flight {
        followers: Vec::new(),
    };
    map.flights.insert(key.to_string(), (id, Box::new(flight)));
    Joined::Lead(id)
}

fn land<T, E>(flights: &Flights, key: &str, id: u64, answer: Option<&Answer<T, E>>)
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    let flight = {
        let mut map = flights.lock();
        match map.flights.get(key) {
            Some((found, _)) if *found == id => map.flights.remove(key).map(|(_, f)| f),
            // Not ours (cannot happen: only the leader removes its flight).
            _ => None,
        }
    };
    // Outside the lock: the followers are answered (or let go) without holding up others.
    let Some(Ok(flight)) = flight.map(|f| f.downcast::<Flight<T, E>>()) else {
        return;
    };
    let Some(answer) = answer else {
        return;
    };
    for follower in flight.followers {
        if !follower.is_closed() {
            // A follower dropped meanwhile has nobody left to tell.
            let _ = follower.send(answer.clone());
        }
    }
}

/// The leader's hold on its flight: [`land`](Self::land) answers the followers; dropped
/// without landing (the leader was cancelled), it lets them go to start over.
pub(crate) struct FlightGuard<'a, T, E> {
    flights: &'a Flights,
    coalesce: &'a Coalesce<T, E>,
    id: u64,
    landed: bool,
}

impl<'a, T, E> FlightGuard<'a, T, E> {
    pub(crate) fn new(flights: &'a Flights, coalesce: &'a Coalesce<T, E>, id: u64) -> Self {
        FlightGuard {
            flights,
            coalesce,
            id,
            landed: false,
        }
    }

    /// Ends the flight, answering every follower with a clone of `answer`.
    pub(crate) fn land(mut self, answer: &Answer<T, E>) {
        self.landed = true;
        self.coalesce.land(self.flights, self.id, Some(answer));
    }
}

impl<T, E> Drop for FlightGuard<'_, T, E> {
    fn drop(&mut self) {
        if !self.landed {
            self.coalesce.land(self.flights, self.id, None);
        }
    }
}

#[cfg(all(test, not(warden_loom)))]
mod tests {
    use super::*;

    type C = Coalesce<u32, String>;

    fn lead(flights: &Flights, c: &C) -> u64 {
        match c.join(flights, true) {
            Joined::Lead(id) => id,
            _ => panic!("expected to lead"),
        }
    }

    fn follow(flights: &Flights, c: &C) -> oneshot::Receiver<Answer<u32, String>> {
        match c.join(flights, false) {
            Joined::Follow(receiver) => receiver,
            _ => panic!("expected to follow"),
        }
    }

    fn followers(flights: &Flights, key: &str) -> usize {
        let mut map = flights.lock();
        let (_, flight) = map.flights.get_mut(key).unwrap();
        flight
            .downcast_mut::<Flight<u32, String>>()
            .unwrap()
            .followers
            .len()
    }

    #[test]
    fn followers_get_a_clone_of_the_leaders_answer_and_the_flight_ends() {
        let flights = Flights::default();
        let c = C::new("k".into());
        assert!(matches!(c.join(&flights, false), Joined::Vacant));
        let id = lead(&flights, &c);
        let mut a = follow(&flights, &c);
        let mut b = follow(&flights, &c);
        assert_eq!(flights.len(), 1);
        c.land(&flights, id, Some(&Ok(7)));
        assert_eq!(flights.len(), 0);
        assert_eq!(a.try_recv().unwrap().unwrap(), 7);
        assert_eq!(b.try_recv().unwrap().unwrap(), 7);
        // The key is free again: the next call leads a new flight.
        assert_ne!(lead(&flights, &c), id);
    }

    #[test]
    fn a_cancelled_leader_lets_its_followers_go() {
        let flights = Flights::default();
        let c = C::new("k".into());
        let id = lead(&flights, &c);
        let mut a = follow(&flights, &c);
        drop(FlightGuard::new(&flights, &c, id));
        assert_eq!(flights.len(), 0);
        assert!(matches!(
            a.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn another_answer_type_under_the_same_key_runs_alone() {
        let flights = Flights::default();
        let c = C::new("k".into());
        let _id = lead(&flights, &c);
        let other: Coalesce<String, String> = Coalesce::new("k".into());
        assert!(matches!(other.join(&flights, true), Joined::Alone));
        let distinct = C::new("j".into());
        assert!(matches!(distinct.join(&flights, true), Joined::Lead(_)));
        assert_eq!(flights.len(), 2);
    }

    #[test]
    fn dropped_followers_give_their_places_back() {
        let flights = Flights::default();
        let c = C::new("k".into());
        let _id = lead(&flights, &c);
        for _ in 0..1000 {
            drop(follow(&flights, &c));
        }
        // Every follower was dropped at once: the list never holds more than a few of them.
        assert!(
            followers(&flights, "k") <= 4,
            "{}",
            followers(&flights, "k")
        );
        let live: Vec<_> = (0..100).map(|_| follow(&flights, &c)).collect();
        assert!(followers(&flights, "k") <= 2 * live.len() + 4);
    }
}
