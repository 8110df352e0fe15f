package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/deadnode/deadnode/forensics/internal/ondisk"
)

// csContainer is a record of containers.json.
type csContainer struct {
	ID       string    `json:"id"`
	Names    []string  `json:"names"`
	ImageID  string    `json:"image"`
	LayerID  string    `json:"layer"`
	Metadata string    `json:"metadata"`
	Created  time.Time `json:"created"`
}

// csLayer is a record of layers.json.
type csLayer struct {
	ID                 string    `json:"id"`
	Names              []string  `json:"names"`
	Parent             string    `json:"parent"`
	MountPoint         string    `json:"mountpoint"`
	Created            time.Time `json:"created"`
	CompressedDigest   string    `json:"compressed-diff-digest"`
	CompressedSize     int64     `json:"compressed-size"`
	UncompressedDigest string    `json:"diff-digest"`
	UncompressedSize   int64     `json:"diff-size"`
}

// csImage is a record of images.json.
type csImage struct {
	ID             string            `json:"id"`
	Digest         string            `json:"digest"`
	Names          []string          `json:"names"`
	TopLayer       string            `json:"layer"`
	BigDataNames   []string          `json:"big-data-names"`
	BigDataSizes   map[string]int64  `json:"big-data-sizes"`
	BigDataDigests map[string]string `json:"big-data-digests"`
	Created        time.Time         `json:"created"`
}

// crioMetadata is the JSON CRI-O keeps in a container's "metadata" string.
// Podman writes a subset (image-name, image-id, name, created-at).
type crioMetadata struct {
	Pod           bool   `json:"pod"`
	PodName       string `json:"pod-name"`
	PodID         string `json:"pod-id"`
	ImageName     string `json:"image-name"`
	ImageID       string `json:"image-id"`
	ContainerName string `json:"name"`
	MetadataName  string `json:"metadata-name"`
	UID           string `json:"uid"`
	Namespace     string `json:"namespace"`
	CreatedAt     int64  `json:"created-at"`
	Attempt       uint32 `json:"attempt"`
	Privileged    bool   `json:"privileged"`
}

// isCRIO says whether the metadata was written by CRI-O.
func (m *crioMetadata) isCRIO() bool { return m.PodID != "" || m.PodName != "" || m.MetadataName != "" }

// libpodConfig is the part of a libpod container config read here.
type libpodConfig struct {
	Spec            json.RawMessage   `json:"spec"`
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Pod             string            `json:"pod"`
	Namespace       string            `json:"namespace"`
	RootfsImageID   string            `json:"rootfsImageID"`
	RootfsImageName string            `json:"rootfsImageName"`
	Labels          map[string]string `json:"labels"`
	CreatedTime     time.Time         `json:"createdTime"`
	LogPath         string            `json:"logPath"`
	Privileged      bool              `json:"privileged"`
	OCIRuntime      string            `json:"runtime"`
	IsInfra         bool              `json:"pause"`
}

// libpodState is a libpod container state.
type libpodState struct {
	State        int       `json:"state"`
	Pid          int       `json:"pid"`
	ExitCode     int32     `json:"exitCode"`
	Exited       bool      `json:"exited"`
	OOMKilled    bool      `json:"oomKilled"`
	StartedTime  time.Time `json:"startedTime"`
	FinishedTime time.Time `json:"finishedTime"`
	Error        string    `json:"error"`
}

// libpodPod is a libpod pod config and state.
type libpodPod struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
	Created   time.Time         `json:"created"`
	CgroupPar string            `json:"cgroupParent"`
}

type libpodPodState struct {
	CgroupPath       string `json:"cgroupPath"`
	InfraContainerID string `json:"infraContainerID"`
}

// crioState is CRI-O's userdata/state.json (oci.ContainerState).
type crioState struct {
	Status    string    `json:"status"`
	Pid       int       `json:"pid"`
	Created   time.Time `json:"created"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	ExitCode  *int32    `json:"exitCode"`
	OOMKilled bool      `json:"oomKilled"`
	Error     string    `json:"error"`
}

// specAnnotations is the part of an OCI spec read to recognise CRI-O.
type specAnnotations struct {
	Annotations map[string]string `json:"annotations"`
}

func decodeContainer(b []byte) (*csContainer, error) {
	var c csContainer
	if err := object(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeLayer(b []byte) (*csLayer, error) {
	var l csLayer
	if err := object(b, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

func decodeImage(b []byte) (*csImage, error) {
	var im csImage
	if err := object(b, &im); err != nil {
		return nil, err
	}
	return &im, nil
}

// decodeMetadata decodes the metadata string of a containers.json record
// (JSON inside a JSON string). An empty string is no metadata.
func decodeMetadata(s string) (*crioMetadata, error) {
	var m crioMetadata
	if strings.TrimSpace(s) == "" {
		return &m, nil
	}
	if err := object([]byte(s), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func decodeLibpodConfig(b []byte) (*libpodConfig, error) {
	var c libpodConfig
	if err := object(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeLibpodState(b []byte) (*libpodState, error) {
	var s libpodState
	if err := object(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func decodeCRIOState(b []byte) (*crioState, error) {
	var s crioState
	if err := object(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// object decodes one JSON object and refuses trailing data.
func object(b []byte, v any) error { return ondisk.Object(b, v, "empty") }

// jsonErr names the byte offset (from base) of a JSON error.
func jsonErr(err error, base int64) error { return ondisk.JSONErr(err, base) }

// decodeList streams a JSON array, calling fn with each element and its
// byte offset. A torn or malformed list stops at the first bad element:
// the elements before it have been passed to fn, and the error says where
// the list broke. At most max elements are read.
func decodeList(r io.Reader, max int, fn func(i int, off int64, raw json.RawMessage)) (int, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err == io.EOF {
		return 0, nil // an empty file is an empty store
	}
	if err != nil {
		return 0, jsonErr(err, 0)
	}
	if tok == nil {
		return 0, nil // null
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return 0, errors.New("offset 0: not a JSON array")
	}
	n := 0
	for dec.More() {
		if n >= max {
			return n, fmt.Errorf("more than %d records; the rest is not read", max)
		}
		off := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				return n, fmt.Errorf("offset %d: record %d: the list is torn (ends inside a record); %d records read before it", off, n, n)
			}
			return n, fmt.Errorf("record %d: %w; %d records read before it", n, jsonErr(err, 0), n)
		}
		fn(n, off, raw)
		n++
	}
	if _, err := dec.Token(); err != nil {
		return n, fmt.Errorf("offset %d: the list is not closed (%v); %d records read", dec.InputOffset(), err, n)
	}
	return n, nil
}

// parseLower splits an overlay lower file ("l/A:l/B:…", top first) into
// its l/<short> entries (see ondisk.ParseLower).
func parseLower(b []byte) ([]string, error) { return ondisk.ParseLower(b, linkDir, maxLowers) }

// plainName says whether s can be used as one path component.
