//! `GET /v1/ws`: one task per connection, a `select!` over inbound frames, turn output, stored
//! events, heartbeat, idle timeout and shutdown.
//!
//! Limits (RFC 6455 close codes): a frame (or reassembled fragmented message) over
//! `ws.max_frame_bytes` closes with 1009; a text frame that is not UTF-8 closes with 1007;
//! other protocol violations close with 1002. A binary frame, malformed JSON or an unknown
//! frame type get an `error` frame and the socket stays open.

use crate::api::AppState;
use crate::api::wire::{self, ClientFrame, ErrorCode, ServerFrame};
use crate::engine::{
    ConversationContext, Engine, EngineError, RequestOrigin, TurnInput, TurnOutput, TurnSummary,
};
use crate::ids::{AnswerId, ClientMessageId, EventId};
use crate::ports::store::EventStream;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Item, Message, ProtocolError, Session};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{Instrument, debug, info, warn};

/// Turn outputs buffered per connection.
const TURN_CHANNEL: usize = 64;

/// Upgrades the request and spawns the connection task.
pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let origin = RequestOrigin {
        origin: header(&req, "origin"),
        host: header(&req, "host"),
    };
    let client_ip = crate::api::client_ip(&req, &state.trusted_proxies);
    let span =
        tracing::info_span!("ws", client.ip = %client_ip, conversation.id = tracing::field::Empty);
    let connection = Connection {
        engine: Arc::clone(&state.engine),
        limits: state.ws.clone(),
        shutdown: state.shutdown.clone(),
        session,
        origin,
        open: None,
        turn: None,
        queue: VecDeque::new(),
        last_sent: EventId::ZERO,
        fragments: None,
        socket_id: uuid::Uuid::new_v4().to_string(),
    };
    actix_web::rt::spawn(
        connection
            .run(stream.max_frame_size(state.ws.max_frame_bytes.get()))
            .instrument(span),
    );
    Ok(response)
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

struct OpenConversation {
    context: Arc<ConversationContext>,
    events: EventStream,
}

struct RunningTurn {
    outputs: mpsc::Receiver<TurnOutput>,
    handle: JoinHandle<Result<TurnSummary, EngineError>>,
}

/// A fragmented message being reassembled.
struct Fragments {
    text: bool,
    bytes: Vec<u8>,
}

/// A complete fragmented message.
enum Reassembled {
    Text(String),
    Binary,
}

/// `Ok` when a frame went out, else the peer is gone.
fn sent(ok: bool) -> Result<(), Exit> {
    if ok { Ok(()) } else { Err(Exit::Gone) }
}

/// Why the loop ends.
enum Exit {
    /// The peer went away or closed: nothing more to send.
    Gone,
    /// Close with this code and reason.
    Close(CloseCode, &'static str),
}

struct Connection {
    engine: Arc<Engine>,
    limits: crate::config::WsSettings,
    shutdown: tokio_util::sync::CancellationToken,
    session: Session,
    origin: RequestOrigin,
    open: Option<OpenConversation>,
    turn: Option<RunningTurn>,
    /// Stored messages waiting for their turn (one turn at a time per connection).
    queue: VecDeque<TurnInput>,
    /// Highest event id delivered on this socket: stored events are forwarded once, in order.
    last_sent: EventId,
    fragments: Option<Fragments>,
    /// This socket's id in the conversation's presence (agents' replies are emailed when no
    /// socket shows the conversation).
    socket_id: String,
}

/// What the running turn did next.
enum TurnEvent {
    Output(TurnOutput),
    Finished(Result<Result<TurnSummary, EngineError>, tokio::task::JoinError>),
}

/// The running turn's next output, then (once its channel closes, i.e. the task ended) its
/// result; never resolves when no turn runs.
async fn next_turn_event(turn: &mut Option<RunningTurn>) -> TurnEvent {
    let Some(running) = turn else {
        return std::future::pending().await;
    };
    match running.outputs.recv().await {
        Some(output) => TurnEvent::Output(output),
        None => TurnEvent::Finished((&mut running.handle).await),
    }
}

/// Next stored event (never before `hello`).
async fn next_event(open: &mut Option<OpenConversation>) -> Option<crate::domain::StoredEvent> {
    match open {
        Some(open) => open.events.next().await,
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn run(mut self, mut inbound: actix_ws::MessageStream) {
        let heartbeat = self.limits.heartbeat;
        let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let idle = tokio::time::sleep(self.limits.idle_timeout);
        tokio::pin!(idle);
        let mut draining = false;
        let shutdown = self.shutdown.clone();

        let exit = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    if self.turn.is_none() {
                        break Exit::Close(CloseCode::Away, "server shutting down");
                    }
                }
                turn_event = next_turn_event(&mut self.turn) => match turn_event {
                    TurnEvent::Output(output) => {
                        if !self.send(&wire::turn_frame(&output)).await {
                            break Exit::Gone;
                        }
                    }
                    TurnEvent::Finished(finished) => {
                        self.turn = None;
                        if !self.turn_done(finished).await {
                            break Exit::Gone;
                        }
                        if draining {
                            break Exit::Close(CloseCode::Away, "server shutting down");
                        }
                        self.start_next_turn();
                    }
                },
                event = next_event(&mut self.open) => {
                    match event {
                        Some(event) => {
                            if !self.deliver(&event).await {
                                break Exit::Gone;
                            }
                        }
                        None => break Exit::Close(CloseCode::Error, "conversation stream ended"),
                    }
                }
                frame = inbound.next() => {
                    match frame {
                        None => break Exit::Gone,
                        Some(Err(ProtocolError::Overflow)) => break Exit::Close(CloseCode::Size, "frame too large"),
                        Some(Err(ProtocolError::Io(err))) if err.kind() == std::io::ErrorKind::InvalidData => {
                            break Exit::Close(CloseCode::Invalid, "text frame is not valid UTF-8");
                        }
                        Some(Err(err)) => {
                            debug!(error = %err, "websocket protocol error");
                            break Exit::Close(CloseCode::Protocol, "protocol error");
                        }
                        Some(Ok(message)) => {
                            last_heard = Instant::now();
                            if !matches!(message, Message::Pong(_) | Message::Ping(_)) {
                                idle.as_mut().reset(Instant::now() + self.limits.idle_timeout);
                            }
                            match self.on_message(message, draining).await {
                                Ok(()) => {}
                                Err(exit) => break exit,
                            }
                        }
                    }
                }
                () = &mut idle => break Exit::Close(CloseCode::Normal, "idle timeout"),
                _ = ticker.tick() => {
                    if last_heard.elapsed() > heartbeat * 2 {
                        break Exit::Close(CloseCode::Away, "heartbeat timeout");
                    }
                    if self.session.ping(b"").await.is_err() {
                        break Exit::Gone;
                    }
                    if let Some(open) = &self.open {
                        self.engine
                            .visitor_present(&open.context, &self.socket_id, heartbeat * 2)
                            .await;
                    }
                }
            }
        };
        if let Some(running) = self.turn.take() {
            // The visitor left mid-answer: stop the turn (an LLM stream is dropped with it).
            running.handle.abort();
        }
        if let Some(open) = &self.open {
            self.engine
                .visitor_left(&open.context, &self.socket_id)
                .await;
        }
        match exit {
            Exit::Gone => {}
            Exit::Close(code, reason) => {
                debug!(
                    close.code = u16::from(code),
                    close.reason = reason,
                    "closing websocket"
                );
                let _ = self
                    .session
                    .close(Some(CloseReason {
                        code,
                        description: Some(reason.into()),
                    }))
                    .await;
            }
        }
    }

    async fn send(&mut self, frame: &ServerFrame) -> bool {
        self.session.text(frame.to_json()).await.is_ok()
    }

    async fn send_error(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        client_message_id: Option<String>,
    ) -> bool {
        let frame = ServerFrame::Error {
            code,
            message: message.into(),
            retry_after_ms: None,
            client_message_id,
        };
        self.send(&frame).await
    }

    /// Sends an engine error as an `error` frame; logs the cause chain of server-side failures.
    async fn send_engine_error(
        &mut self,
        err: &EngineError,
        client_message_id: Option<String>,
    ) -> bool {
        let (code, message, retry_after_ms) = crate::api::error_reply(err);
        let frame = ServerFrame::Error {
            code,
            message,
            retry_after_ms,
            client_message_id,
        };
        self.send(&frame).await
    }

    /// Forwards a stored event once (events arrive in id order).
    async fn deliver(&mut self, event: &crate::domain::StoredEvent) -> bool {
        if event.event_id <= self.last_sent {
            return true;
        }
        self.last_sent = event.event_id;
        match wire::event_frame(event) {
            Some(frame) => self.send(&frame).await,
            // Internal notes are for the team only.
            None => true,
        }
    }

    /// Delivers stored events until `event_id` has been sent (so an `ack` precedes the turn's
    /// deltas, and events keep their order).
    async fn deliver_through(&mut self, event_id: EventId) -> bool {
        while self.last_sent < event_id {
            let Some(open) = self.open.as_mut() else {
                return true;
            };
            match tokio::time::timeout(Duration::from_secs(5), open.events.next()).await {
                Ok(Some(event)) => {
                    if !self.deliver(&event).await {
                        return false;
                    }
                }
                // The store said it stored the event; if its stream lags this much, stop
                // waiting and let the select loop deliver it.
                Ok(None) | Err(_) => return true,
            }
        }
        true
    }

    async fn on_message(&mut self, message: Message, draining: bool) -> Result<(), Exit> {
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Binary(_) => {
                return sent(
                    self.send_error(
                        ErrorCode::BadRequest,
                        "binary frames are not supported; send JSON text frames",
                        None,
                    )
                    .await,
                );
            }
            Message::Continuation(item) => match self.reassemble(item)? {
                Some(Reassembled::Text(text)) => text,
                Some(Reassembled::Binary) => {
                    return sent(
                        self.send_error(
                            ErrorCode::BadRequest,
                            "binary frames are not supported; send JSON text frames",
                            None,
                        )
                        .await,
                    );
                }
                None => return Ok(()),
            },
            Message::Ping(bytes) => return sent(self.session.pong(&bytes).await.is_ok()),
            Message::Pong(_) | Message::Nop => return Ok(()),
            Message::Close(reason) => {
                debug!(?reason, "client closed the websocket");
                return Err(Exit::Close(CloseCode::Normal, "bye"));
            }
        };
        let frame = match wire::parse_client_frame(&text) {
            Ok(frame) => frame,
            Err(err) => {
                return sent(
                    self.send_error(ErrorCode::BadRequest, err.message, err.client_message_id)
                        .await,
                );
            }
        };
        self.on_frame(frame, draining).await
    }

    /// Reassembles a fragmented message; `Some` once complete.
    fn reassemble(&mut self, item: Item) -> Result<Option<Reassembled>, Exit> {
        let max = self.limits.max_frame_bytes.get();
        let (bytes, last) = match item {
            Item::FirstText(bytes) => {
                self.fragments = Some(Fragments {
                    text: true,
                    bytes: Vec::new(),
                });
                (bytes, false)
            }
            Item::FirstBinary(bytes) => {
                self.fragments = Some(Fragments {
                    text: false,
                    bytes: Vec::new(),
                });
                (bytes, false)
            }
            Item::Continue(bytes) => (bytes, false),
            Item::Last(bytes) => (bytes, true),
        };
        let Some(fragments) = self.fragments.as_mut() else {
            return Err(Exit::Close(
                CloseCode::Protocol,
                "continuation without a first fragment",
            ));
        };
        if fragments.bytes.len() + bytes.len() > max {
            return Err(Exit::Close(CloseCode::Size, "message too large"));
        }
        fragments.bytes.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let Some(Fragments { text, bytes }) = self.fragments.take() else {
            return Ok(None);
        };
        if !text {
            return Ok(Some(Reassembled::Binary));
        }
        String::from_utf8(bytes)
            .map(|text| Some(Reassembled::Text(text)))
            .map_err(|_| Exit::Close(CloseCode::Invalid, "text message is not valid UTF-8"))
    }

    async fn on_frame(&mut self, frame: ClientFrame, draining: bool) -> Result<(), Exit> {
        let Some(context) = self.open.as_ref().map(|open| Arc::clone(&open.context)) else {
            return match frame {
                ClientFrame::Hello(hello) => self.on_hello(hello).await,
                _ => sent(
                    self.send_error(ErrorCode::Unauthorized, "send hello first", None)
                        .await,
                ),
            };
        };
        match frame {
            ClientFrame::Hello(_) => sent(
                self.send_error(
                    ErrorCode::BadRequest,
                    "hello was already received on this connection",
                    None,
                )
                .await,
            ),
            ClientFrame::Message(message) => {
                let client_id = message.client_message_id.clone();
                let Ok(client_message_id) = ClientMessageId::parse(&message.client_message_id)
                else {
                    return sent(
                        self.send_error(
                            ErrorCode::BadRequest,
                            "client_message_id must be a UUID",
                            Some(client_id),
                        )
                        .await,
                    );
                };
                if draining {
                    return sent(
                        self.send_error(
                            ErrorCode::UpstreamUnavailable,
                            "the server is restarting; send this again after reconnecting",
                            Some(client_id),
                        )
                        .await,
                    );
                }
                match self
                    .engine
                    .accept_message(&context, client_message_id, &message.text)
                    .await
                {
                    Ok(accepted) => {
                        if accepted.appended.duplicate {
                            let ack = ServerFrame::Ack {
                                client_message_id: client_id,
                                message_id: accepted.appended.message_id.to_string(),
                                event_id: accepted.appended.event_id.get(),
                                duplicate: true,
                            };
                            return sent(self.send(&ack).await);
                        }
                        if !self.deliver_through(accepted.appended.event_id).await {
                            return Err(Exit::Gone);
                        }
                        if accepted.run_turn {
                            self.queue.push_back(TurnInput {
                                message_id: accepted.appended.message_id,
                                text: message.text,
                            });
                            self.start_next_turn();
                        }
                        Ok(())
                    }
                    Err(err) => sent(self.send_engine_error(&err, Some(client_id)).await),
                }
            }
            ClientFrame::Typing { is_typing } => {
                debug!(is_typing, "visitor typing");
                Ok(())
            }
            ClientFrame::RequestHuman {} => match self.engine.request_human(&context).await {
                Ok(requested) if requested.already_pending => {
                    match wire::event_frame(&requested.event) {
                        Some(frame) => sent(self.send(&frame).await),
                        None => Ok(()),
                    }
                }
                Ok(requested) => sent(self.deliver_through(requested.event.event_id).await),
                Err(err) => sent(self.send_engine_error(&err, None).await),
            },
            ClientFrame::Feedback { answer_id, helpful } => {
                let Ok(answer_id) = AnswerId::parse(&answer_id) else {
                    return sent(
                        self.send_error(ErrorCode::BadRequest, "answer_id must be a UUID", None)
                            .await,
                    );
                };
                match self.engine.feedback(&context, answer_id, helpful).await {
                    Ok(()) => Ok(()),
                    Err(err) => sent(self.send_engine_error(&err, None).await),
                }
            }
            ClientFrame::Csat { rating, comment } => {
                match self.engine.csat(&context, rating, comment).await {
                    Ok(()) => Ok(()),
                    Err(err) => sent(self.send_engine_error(&err, None).await),
                }
            }
            ClientFrame::Contact { email } => match self.engine.contact(&context, &email).await {
                Ok(()) => Ok(()),
                Err(err) => sent(self.send_engine_error(&err, None).await),
            },
        }
    }

    async fn on_hello(&mut self, hello: wire::HelloFrame) -> Result<(), Exit> {
        let opened = match self
            .engine
            .open(hello.into_hello(self.origin.clone()))
            .await
        {
            Ok(opened) => opened,
            Err(err) => return sent(self.send_engine_error(&err, None).await),
        };
        tracing::Span::current().record(
            "conversation.id",
            tracing::field::display(opened.context.conversation_id),
        );
        info!(site.id = %opened.context.site.id, resumed = !opened.history.is_empty() || !opened.replay.is_empty(), "conversation opened");
        let welcome = ServerFrame::Welcome {
            conversation_id: opened.context.conversation_id.to_string(),
            visitor_id: opened.context.visitor_id.to_string(),
            resume_token: opened.resume_token,
            status: wire::status(opened.status),
            last_event_id: opened.last_event_id.get(),
            history: opened
                .history
                .iter()
                .filter_map(wire::history_entry)
                .collect(),
        };
        if !self.send(&welcome).await {
            return Err(Exit::Gone);
        }
        for frame in opened.replay.iter().filter_map(wire::event_frame) {
            if !self.send(&frame).await {
                return Err(Exit::Gone);
            }
        }
        self.last_sent = opened.last_event_id;
        self.engine
            .visitor_present(&opened.context, &self.socket_id, self.limits.heartbeat * 2)
            .await;
        self.open = Some(OpenConversation {
            context: opened.context,
            events: opened.events,
        });
        Ok(())
    }

    fn start_next_turn(&mut self) {
        if self.turn.is_some() {
            return;
        }
        let (Some(open), Some(input)) = (self.open.as_ref(), self.queue.pop_front()) else {
            return;
        };
        let (tx, rx) = mpsc::channel(TURN_CHANNEL);
        let engine = Arc::clone(&self.engine);
        let context = Arc::clone(&open.context);
        let span = tracing::info_span!("turn", message.id = %input.message_id);
        let handle = actix_web::rt::spawn(
            async move { engine.run_turn(&context, input, &tx).await }.instrument(span),
        );
        self.turn = Some(RunningTurn {
            outputs: rx,
            handle,
        });
    }

    /// Reports a finished turn; false when the socket is gone.
    async fn turn_done(
        &mut self,
        finished: Result<Result<TurnSummary, EngineError>, tokio::task::JoinError>,
    ) -> bool {
        match finished {
            Ok(Ok(summary)) => {
                info!(
                    turn.outcome = ?summary.outcome,
                    turn.reasons = ?summary.reasons,
                    turn.confidence = summary.confidence,
                    turn.n_deltas = summary.n_deltas,
                    turn.first_delta_ms = summary.first_delta_after.map(|d| d.as_secs_f64() * 1000.0),
                    "turn finished"
                );
                match summary.event_id {
                    Some(event_id) => self.deliver_through(event_id).await,
                    None => true,
                }
            }
            Ok(Err(err)) => self.send_engine_error(&err, None).await,
            Err(join) => {
                warn!(error = %join, "turn task failed");
                self.send_error(
                    ErrorCode::Internal,
                    "something went wrong while answering; please try again",
                    None,
                )
                .await
            }
        }
    }
}
