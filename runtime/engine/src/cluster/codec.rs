//! Dataflow messages on the wire. A frame carries a sequence of one channel's messages; its
//! record batches travel together as one Arrow IPC stream (the schema once, then each batch),
//! the other messages as their few fields, in order among the batches.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use weir_rpc::cluster::{self as pb, channel_message};

use crate::dataflow::message::{Barrier, BarrierKind, Message};
use crate::error::{Error, Result};

/// One frame's messages as they are buffered: batches are encoded as they come, so the
/// buffered size is known and a flush only closes the stream.
#[derive(Default)]
pub struct FrameBuilder {
    /// The open stream and its schema.
    writer: Option<(StreamWriter<Vec<u8>>, SchemaRef)>,
    messages: Vec<pb::ChannelMessage>,
}

impl FrameBuilder {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Bytes of encoded batches so far.
    pub fn bytes(&self) -> usize {
        self.writer.as_ref().map_or(0, |(w, _)| w.get_ref().len())
    }

    /// Whether `batch` can join this frame's stream: the stream has one schema, so a batch
    /// with another one needs a new frame.
    pub fn accepts(&self, batch: &RecordBatch) -> bool {
        self.writer.as_ref().is_none_or(|(_, schema)| {
            let other = batch.schema_ref();
            Arc::ptr_eq(schema, other) || schema == other
        })
    }

    /// Add `message`; a batch must be [`accepted`](Self::accepts). A watermark right after
    /// another replaces it: the receiver only ever uses the newer one.
    pub fn push(&mut self, message: &Message) -> Result<()> {
        let encoded = match message {
            Message::Batch(batch) => {
                let (writer, _) = match &mut self.writer {
                    Some(open) => open,
                    None => self.writer.insert((
                        StreamWriter::try_new(Vec::new(), batch.schema_ref())?,
                        batch.schema(),
                    )),
                };
                writer.write(batch)?;
                channel_message::Message::Batch(true)
            }
            Message::Watermark(w) => {
                if let Some(pb::ChannelMessage {
                    message: Some(channel_message::Message::Watermark(last)),
                }) = self.messages.last_mut()
                {
                    *last = (*last).max(*w);
                    return Ok(());
                }
                channel_message::Message::Watermark(*w)
            }
            Message::Barrier(b) => channel_message::Message::Barrier(pb::Barrier {
                id: b.id,
                savepoint: b.is_savepoint(),
            }),
            Message::Idle => channel_message::Message::Idle(true),
            Message::End => channel_message::Message::End(true),
        };
        self.messages.push(pb::ChannelMessage {
            message: Some(encoded),
        });
        Ok(())
    }

    /// The buffered messages and their batches' stream; the builder is empty again.
    pub fn finish(&mut self) -> Result<(Vec<pb::ChannelMessage>, Bytes)> {
        let batches = match self.writer.take() {
            Some((mut writer, _)) => {
                writer.finish()?;
                Bytes::from(writer.into_inner()?)
            }
            None => Bytes::new(),
        };
        Ok((std::mem::take(&mut self.messages), batches))
    }
}

/// The messages a frame carries, in order.
pub fn decode(messages: Vec<pb::ChannelMessage>, batches: Bytes) -> Result<Vec<Message>> {
    let mut reader = None;
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        out.push(match message.message {
            Some(channel_message::Message::Batch(_)) => {
                let reader = match &mut reader {
                    Some(reader) => reader,
                    None => {
                        reader.insert(StreamReader::try_new(Cursor::new(batches.clone()), None)?)
                    }
                };
                match reader.next() {
                    Some(batch) => Message::Batch(batch?),
                    None => {
                        return Err(Error::execution(
                            "network",
                            "a frame names more batches than it holds",
                        ));
                    }
                }
            }
            Some(channel_message::Message::Watermark(w)) => Message::Watermark(w),
            Some(channel_message::Message::Barrier(b)) => Message::Barrier(Barrier {
                id: b.id,
                kind: if b.savepoint {
                    BarrierKind::Savepoint
                } else {
                    BarrierKind::Checkpoint
                },
            }),
            Some(channel_message::Message::Idle(_)) => Message::Idle,
            Some(channel_message::Message::End(_)) => Message::End,
            None => {
                return Err(Error::execution(
                    "network",
                    "a data frame carried an empty message",
                ));
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(ids: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let names: Vec<Option<String>> = ids
            .iter()
            .map(|i| (i % 2 == 0).then(|| format!("n{i}")))
            .collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .expect("batch")
    }

    fn round_trip(messages: &[Message]) -> Vec<Message> {
        let mut frame = FrameBuilder::default();
        for m in messages {
            if let Message::Batch(b) = m {
                assert!(frame.accepts(b));
            }
            frame.push(m).expect("push");
        }
        let (encoded, batches) = frame.finish().expect("finish");
        assert!(
            frame.is_empty() && frame.bytes() == 0,
            "finish empties the builder"
        );
        decode(encoded, batches).expect("decode")
    }

    fn same(a: &Message, b: &Message) -> bool {
        match (a, b) {
            (Message::Batch(a), Message::Batch(b)) => a == b,
            (Message::Watermark(a), Message::Watermark(b)) => a == b,
            (Message::Barrier(a), Message::Barrier(b)) => a == b,
            (Message::Idle, Message::Idle) | (Message::End, Message::End) => true,
            _ => false,
        }
    }

    #[test]
    fn a_frame_keeps_every_message_in_order_with_the_watermarks_between_batches() {
        let sent = vec![
            Message::Batch(batch(vec![1, 2, 3])),
            Message::Watermark(-5),
            Message::Batch(batch(vec![4])),
            Message::Watermark(7),
            Message::Batch(batch(vec![5, 6])),
            Message::Barrier(Barrier {
                id: 9,
                kind: BarrierKind::Savepoint,
            }),
            Message::Idle,
            Message::End,
        ];
        let back = round_trip(&sent);
        assert_eq!(back.len(), sent.len(), "{back:?}");
        for (a, b) in sent.iter().zip(&back) {
            assert!(same(a, b), "{a:?} came back as {b:?}");
        }
    }

    #[test]
    fn consecutive_watermarks_travel_as_the_newest() {
        let back = round_trip(&[
            Message::Watermark(3),
            Message::Watermark(8),
            Message::Batch(batch(vec![1])),
            Message::Watermark(9),
        ]);
        assert_eq!(back.len(), 3, "{back:?}");
        assert!(same(&back[0], &Message::Watermark(8)));
        assert!(same(&back[2], &Message::Watermark(9)));
    }

    #[test]
    fn a_batch_with_another_schema_needs_a_new_frame() {
        let mut frame = FrameBuilder::default();
        frame.push(&Message::Batch(batch(vec![1]))).expect("push");
        assert!(frame.bytes() > 0);
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .expect("batch");
        assert!(!frame.accepts(&other));
        assert!(frame.accepts(&batch(vec![2])));
    }

    #[test]
    fn a_damaged_frame_is_an_error_not_a_panic() {
        let batch_marker = pb::ChannelMessage {
            message: Some(channel_message::Message::Batch(true)),
        };
        assert!(decode(vec![pb::ChannelMessage { message: None }], Bytes::new()).is_err());
        assert!(decode(vec![batch_marker], Bytes::from_static(b"junk")).is_err());
        // More batch markers than batches in the stream.
        let mut frame = FrameBuilder::default();
        frame.push(&Message::Batch(batch(vec![1]))).expect("push");
        let (mut messages, batches) = frame.finish().expect("finish");
        messages.push(batch_marker);
        assert!(decode(messages, batches).is_err());
    }
}
