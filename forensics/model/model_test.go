package model

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestTimeJSON(t *testing.T) {
	b, _ := json.Marshal(struct {
		A Time `json:"a"`
		B Time `json:"b"`
	}{T(time.Date(2026, 11, 27, 2, 30, 16, 962174262, time.FixedZone("x", 3600))), Time{}})
	if string(b) != `{"a":"2026-11-27T01:30:16.962174262Z","b":null}` {
		t.Errorf("%s", b)
	}
	var back struct{ A, B Time }
	if err := json.Unmarshal(b, &back); err != nil || back.A.UnixNano() != time.Date(2026, 11, 27, 1, 30, 16, 962174262, time.UTC).UnixNano() || !back.B.IsZero() {
		t.Errorf("round trip %+v %v", back, err)
	}
	if (Time{}).String() != "-" {
		t.Errorf("zero prints %q", Time{}.String())
	}
}

func TestParseSpec(t *testing.T) {
	raw := `{"hostname":"h","process":{"args":["sh","-c","x"],"env":["A=1"],"cwd":"/w","user":{"uid":1000,"gid":10},"capabilities":{"effective":["CAP_NET_RAW"]}},
	"root":{"readonly":true},"mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
	"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"},{"type":"mount"}],"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"},"cgroupsPath":"/kubepods/x"}}`
	s, err := ParseSpec([]byte(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Args, []string{"sh", "-c", "x"}) || s.Cwd != "/w" || s.User.UID != 1000 || !s.ReadonlyRootfs || len(s.Mounts) != 1 || s.CgroupsPath != "/kubepods/x" {
		t.Errorf("spec %+v", s)
	}
	// A pid namespace of its own, the host's network (joined through pid
	// 1), no ipc namespace at all (the host's).
	if s.HostPID || !s.HostNetwork || !s.HostIPC || !s.Seccomp || s.Privileged {
		t.Errorf("host pid %v net %v ipc %v seccomp %v privileged %v", s.HostPID, s.HostNetwork, s.HostIPC, s.Seccomp, s.Privileged)
	}
	caps := `"CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_DAC_READ_SEARCH","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_LINUX_IMMUTABLE","CAP_NET_BIND_SERVICE","CAP_NET_BROADCAST","CAP_NET_ADMIN","CAP_NET_RAW","CAP_IPC_LOCK","CAP_IPC_OWNER","CAP_SYS_MODULE","CAP_SYS_RAWIO","CAP_SYS_CHROOT","CAP_SYS_PTRACE","CAP_SYS_PACCT","CAP_SYS_ADMIN","CAP_SYS_BOOT","CAP_SYS_NICE","CAP_SYS_RESOURCE","CAP_SYS_TIME","CAP_SYS_TTY_CONFIG","CAP_MKNOD","CAP_LEASE","CAP_AUDIT_WRITE","CAP_AUDIT_CONTROL","CAP_SETFCAP","CAP_MAC_OVERRIDE","CAP_MAC_ADMIN","CAP_SYSLOG","CAP_WAKE_ALARM","CAP_BLOCK_SUSPEND","CAP_AUDIT_READ"`
	priv, err := ParseSpec([]byte(`{"process":{"capabilities":{"effective":[`+caps+`]}},"linux":{"namespaces":[{"type":"pid"}]}}`), false)
	if err != nil || !priv.Privileged {
		t.Errorf("every capability and no seccomp must read as privileged: %+v %v", priv, err)
	}
	if _, err := ParseSpec([]byte(`{"process":`), false); err == nil {
		t.Error("a torn spec parsed")
	}
}

func TestSortPods(t *testing.T) {
	p := []Pod{{Namespace: "b", Name: "x"}, {Namespace: "a", Name: "z"}, {Namespace: "a", Name: "y"}}
	SortPods(p)
	if p[0].Name != "y" || p[1].Name != "z" || p[2].Namespace != "b" {
		t.Errorf("%+v", p)
	}
	if NonNil[string](nil) == nil || NonNilMap[string, string](nil) == nil {
		t.Error("NonNil returned nil")
	}
}
