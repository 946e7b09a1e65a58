package fsm

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/hourglass-scheduler/hourglass/fsm/fsmpb"
)

// EncodeEntry marshals commands into the data of one raft log entry.
func EncodeEntry(cmds ...*fsmpb.Command) ([]byte, error) {
	data, err := proto.Marshal(&fsmpb.Entry{Commands: cmds})
	if err != nil {
		return nil, fmt.Errorf("encode entry: %w", err)
	}
	return data, nil
}

// DecodeEntry parses and checks a raft log entry. An entry with a command
// of a kind this build does not know is an error, never skipped. It is
// read with proto.Unmarshal, which refuses strings that are not UTF-8 as
// every build of Hourglass has (the generated UnmarshalVT does not check).
// Fields this build does not know are kept, and written into the records
// they belong to, so that replicas of different builds hold the same
// records once all are upgraded (decodeTask reads such records).
func DecodeEntry(data []byte) (*fsmpb.Entry, error) {
	var e fsmpb.Entry
	if err := proto.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode entry: %w", err)
	}
	if len(e.Commands) == 0 {
		return nil, errors.New("decode entry: no commands")
	}
	for i, c := range e.Commands {
		if c.GetKind() == nil {
			return nil, fmt.Errorf("decode entry: command %d has no known kind", i)
		}
	}
	return &e, nil
}

// decodeTask reads a task record. The generated decoder is the fast path;
// it refuses a record holding a field this build knows under another wire
// type, which proto.Unmarshal keeps as an unknown field (an entry from a
// build where the field had another type, or a crafted one: found by
// FuzzApplyEntry). Such a record is read by proto.Unmarshal, as it was
// written.
func decodeTask(v []byte, t *fsmpb.Task) error {
	if t.UnmarshalVT(v) == nil {
		return nil
	}
	t.Reset()
	return proto.Unmarshal(v, t)
}
