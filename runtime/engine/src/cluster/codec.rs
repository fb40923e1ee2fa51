//! Dataflow messages on the wire: a record batch travels as an Arrow IPC stream (its schema,
//! then the batch), the other messages as their few fields.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use weir_rpc::cluster::{self as pb, data_frame};

use crate::dataflow::message::{Barrier, BarrierKind, Message};
use crate::error::{Error, Result};

/// The wire form of `message`.
pub fn encode(message: &Message) -> Result<data_frame::Message> {
    Ok(match message {
        Message::Batch(batch) => data_frame::Message::Batch(encode_batch(batch)?),
        Message::Watermark(w) => data_frame::Message::Watermark(*w),
        Message::Barrier(b) => data_frame::Message::Barrier(pb::Barrier {
            id: b.id,
            savepoint: b.is_savepoint(),
        }),
        Message::Idle => data_frame::Message::Idle(true),
        Message::End => data_frame::Message::End(true),
    })
}

/// The message a frame carries.
pub fn decode(message: Option<data_frame::Message>) -> Result<Message> {
    Ok(match message {
        Some(data_frame::Message::Batch(bytes)) => Message::Batch(decode_batch(bytes)?),
        Some(data_frame::Message::Watermark(w)) => Message::Watermark(w),
        Some(data_frame::Message::Barrier(b)) => Message::Barrier(Barrier {
            id: b.id,
            kind: if b.savepoint {
                BarrierKind::Savepoint
            } else {
                BarrierKind::Checkpoint
            },
        }),
        Some(data_frame::Message::Idle(_)) => Message::Idle,
        Some(data_frame::Message::End(_)) => Message::End,
        None => {
            return Err(Error::execution(
                "network",
                "a data frame carried no message",
            ));
        }
    })
}

fn encode_batch(batch: &RecordBatch) -> Result<Bytes> {
    let mut buffer = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    let mut writer = StreamWriter::try_new(&mut buffer, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(Bytes::from(buffer))
}

fn decode_batch(bytes: Bytes) -> Result<RecordBatch> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    match reader.next() {
        Some(batch) => Ok(batch?),
        None => Err(Error::execution(
            "network",
            "a batch frame held no record batch",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn every_message_survives_the_wire() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .expect("batch");
        let messages = vec![
            Message::Batch(batch.clone()),
            Message::Watermark(-5),
            Message::Barrier(Barrier {
                id: 9,
                kind: BarrierKind::Savepoint,
            }),
            Message::Idle,
            Message::End,
        ];
        for message in messages {
            let back = decode(Some(encode(&message).expect("encode"))).expect("decode");
            match (&message, &back) {
                (Message::Batch(a), Message::Batch(b)) => assert_eq!(a, b),
                (Message::Watermark(a), Message::Watermark(b)) => assert_eq!(a, b),
                (Message::Barrier(a), Message::Barrier(b)) => assert_eq!(a, b),
                (Message::Idle, Message::Idle) | (Message::End, Message::End) => {}
                _ => panic!("{message:?} came back as {back:?}"),
            }
        }
    }

    #[test]
    fn an_empty_frame_is_an_error_not_a_panic() {
        assert!(decode(None).is_err());
        assert!(
            decode(Some(data_frame::Message::Batch(Bytes::from_static(
                b"junk"
            ))))
            .is_err()
        );
    }
}
