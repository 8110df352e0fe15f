package gennode

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Docker node layout (paths relative to the node root), as dockerd 20.10+
// with the overlay2 storage driver writes it.
const (
	DockerRoot       = "var/lib/docker"
	DockerImageStore = DockerRoot + "/image/overlay2"
	DockerOverlay    = DockerRoot + "/overlay2"
)

// DockerLayout describes the shape Docker generates for n containers.
type DockerLayout struct {
	Containers int // all containers, sandboxes included
	Sandboxes  int // dockershim pod sandboxes (every 4th container)
	Running    int
	Exited     int
	Created    int
	Images     int // each with 3 layers; the base layer is shared by all
	Layers     int // distinct image layers (layerdb entries)
}

// PlanDocker returns the DockerLayout Docker(dir, n) writes.
func PlanDocker(n int) DockerLayout {
	l := DockerLayout{Containers: n, Images: max(1, (n+9)/10)}
	l.Layers = 1 + 2*l.Images
	for i := 0; i < n; i++ {
		switch {
		case i%4 == 0:
			l.Sandboxes++
			l.Running++
		case i%3 == 0:
			l.Exited++
		case i%5 == 0:
			l.Created++
		default:
			l.Running++
		}
	}
	return l
}

// DockerContainerID is the id of the i-th generated container.
func DockerContainerID(i int) string { return hashHex("docker-container-%d", i) }

// DockerMountID is the overlay2 mount id of the i-th generated container.
func DockerMountID(i int) string { return hashHex("docker-mount-%d", i) }

// DockerCacheID is the overlay2 directory of layer j (0 = the shared base;
// 1+2k and 2+2k are image k's second and third layers).
func DockerCacheID(j int) string { return hashHex("docker-cache-%d", j) }

var shortEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// shortName is an overlay2 l/ link name (26 upper-case base32 characters).
func shortName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return shortEnc.EncodeToString(sum[:])[:26]
}

type dockerGen struct {
	dir string
	err error
}

func (g *dockerGen) path(rel string) string { return filepath.Join(g.dir, filepath.FromSlash(rel)) }

func (g *dockerGen) write(rel string, b []byte) {
	if g.err != nil {
		return
	}
	p := g.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		g.err = err
		return
	}
	g.err = os.WriteFile(p, b, 0o644)
}

func (g *dockerGen) mkdir(rel string) {
	if g.err == nil {
		g.err = os.MkdirAll(g.path(rel), 0o755)
	}
}

func (g *dockerGen) symlink(target, rel string) {
	if g.err == nil {
		g.err = os.Symlink(target, g.path(rel))
	}
}

func (g *dockerGen) json(rel string, v any) {
	b, err := json.Marshal(v)
	if err != nil && g.err == nil {
		g.err = err
	}
	g.write(rel, b)
}

// layerDir makes overlay2/<id>/{diff,link[,lower]} and its l/ link.
func (g *dockerGen) layerDir(id string, lowers []string) {
	g.mkdir(DockerOverlay + "/" + id + "/diff")
	g.write(DockerOverlay+"/"+id+"/link", []byte(shortName(id)))
	g.symlink("../"+id+"/diff", DockerOverlay+"/l/"+shortName(id))
	if len(lowers) > 0 {
		var ls []string
		for _, l := range lowers {
			ls = append(ls, "l/"+shortName(l))
		}
		g.write(DockerOverlay+"/"+id+"/lower", []byte(strings.Join(ls, ":")))
	}
}

// Docker writes a synthetic Docker 20.10 node tree (overlay2) with n
// containers under dir: images (repositories.json, imagedb configs with
// real digests, layerdb with real chain ids), containers (config.v2.json,
// hostconfig.json, json-file logs) and their layers (layerdb/mounts,
// overlay2 diff dirs, lower files and l/ links, -init layers). Every 4th
// container is a dockershim pod sandbox and the others belong to its pod;
// states cycle through running, exited and created. Output is deterministic.
func Docker(dir string, n int) error {
	if _, err := os.Lstat(filepath.Join(dir, DockerRoot, "containers")); err == nil {
		return fmt.Errorf("%s: a Docker root already exists", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	g := &dockerGen{dir: dir}
	plan := PlanDocker(n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g.write("etc/docker/daemon.json", []byte(`{"data-root": "/var/lib/docker", "log-driver": "json-file"}`))
	g.mkdir(DockerOverlay + "/l")

	// Layers: one shared base, two per image.
	diffID := func(j int) string { return "sha256:" + hashHex("docker-diff-%d", j) }
	type img struct {
		id, name string
		chain    []string // chain ids, bottom first
		caches   []string // cache ids, bottom first
	}
	baseChain := diffID(0)
	g.layerDir(DockerCacheID(0), nil)
	writeLayer := func(chain, diff, parent, cache string, size int) {
		p := DockerImageStore + "/layerdb/sha256/" + strings.TrimPrefix(chain, "sha256:")
		g.write(p+"/diff", []byte(diff))
		g.write(p+"/cache-id", []byte(cache))
		g.write(p+"/size", []byte(fmt.Sprint(size)))
		if parent != "" {
			g.write(p+"/parent", []byte(parent))
		}
	}
	writeLayer(baseChain, diffID(0), "", DockerCacheID(0), 4096)
	repos := map[string]map[string]string{}
	imgs := make([]img, plan.Images)
	for k := range imgs {
		d := []string{diffID(0), diffID(1 + 2*k), diffID(2 + 2*k)}
		caches := []string{DockerCacheID(0), DockerCacheID(1 + 2*k), DockerCacheID(2 + 2*k)}
		chain := []string{d[0]}
		for i := 1; i < 3; i++ {
			chain = append(chain, digestOf([]byte(chain[i-1]+" "+d[i])))
			g.layerDir(caches[i], reverse(caches[:i]))
			writeLayer(chain[i], d[i], chain[i-1], caches[i], 100*i+k)
		}
		name := fmt.Sprintf("registry.example.com/gennode/docker-app-%04d", k)
		cfg := map[string]any{
			"created": base.Add(time.Duration(k) * time.Minute).Format(time.RFC3339Nano), "architecture": "amd64", "os": "linux",
			"config":  map[string]any{"Env": []string{"PATH=/usr/bin:/bin"}, "Entrypoint": []string{"/app"}, "Labels": map[string]string{"app": name}},
			"rootfs":  map[string]any{"type": "layers", "diff_ids": d},
			"history": []map[string]any{{"created_by": "base"}, {"created_by": "app"}, {"created_by": "config"}},
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		id := digestOf(b)
		g.write(DockerImageStore+"/imagedb/content/sha256/"+strings.TrimPrefix(id, "sha256:"), b)
		repos[name] = map[string]string{name + ":1.0": id}
		imgs[k] = img{id: id, name: name + ":1.0", chain: chain, caches: caches}
	}
	g.json(DockerImageStore+"/repositories.json", map[string]any{"Repositories": repos})

	// Containers.
	var sandbox string
	var podName, podUID string
	for i := 0; i < n; i++ {
		id, mount := DockerContainerID(i), DockerMountID(i)
		im := imgs[i%len(imgs)]
		created := base.Add(time.Hour + time.Duration(i)*time.Second)
		labels := map[string]string{}
		name := fmt.Sprintf("/gen-%05d", i)
		if i%4 == 0 {
			podName, podUID, sandbox = fmt.Sprintf("gen-pod-%05d", i/4), uuidOf("docker-pod-%d", i/4), id
			labels["io.kubernetes.docker.type"] = "podsandbox"
			name = fmt.Sprintf("/k8s_POD_%s_gen_%s_0", podName, podUID)
		} else {
			labels["io.kubernetes.docker.type"] = "container"
			labels["io.kubernetes.container.name"] = fmt.Sprintf("c%d", i%4)
			labels["io.kubernetes.sandbox.id"] = sandbox
			name = fmt.Sprintf("/k8s_c%d_%s_gen_%s_%d", i%4, podName, podUID, i%3)
		}
		labels["io.kubernetes.pod.name"], labels["io.kubernetes.pod.namespace"], labels["io.kubernetes.pod.uid"] = podName, "gen", podUID
		state := map[string]any{"Running": false, "Paused": false, "Restarting": false, "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 0, "Error": "",
			"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}
		logPath := "/" + DockerRoot + "/containers/" + id + "/" + id + "-json.log"
		switch {
		case i%4 == 0 || (i%3 != 0 && i%5 != 0):
			state["Running"], state["Pid"] = true, 10000+i
			state["StartedAt"] = created.Add(time.Second).Format(time.RFC3339Nano)
		case i%3 == 0:
			state["ExitCode"] = i % 256
			state["StartedAt"] = created.Add(time.Second).Format(time.RFC3339Nano)
			state["FinishedAt"] = created.Add(time.Minute).Format(time.RFC3339Nano)
		default:
			logPath = ""
		}
		cfg := map[string]any{
			"StreamConfig": map[string]any{}, "State": state, "ID": id, "Created": created.Format(time.RFC3339Nano),
			"Path": "/app", "Args": []string{fmt.Sprint(i)}, "Image": im.id, "Name": name, "Driver": "overlay2", "OS": "linux", "LogPath": logPath,
			"Config":      map[string]any{"Hostname": id[:12], "Env": []string{"PATH=/usr/bin:/bin"}, "Image": im.name, "Entrypoint": []string{"/app"}, "Labels": labels},
			"MountPoints": map[string]any{"/data": map[string]any{"Source": "/" + DockerRoot + "/volumes/v" + id[:12] + "/_data", "Destination": "/data", "RW": true, "Name": "v" + id[:12], "Driver": "local", "Type": "volume"}},
		}
		cdir := DockerRoot + "/containers/" + id
		g.json(cdir+"/config.v2.json", cfg)
		g.json(cdir+"/hostconfig.json", map[string]any{"NetworkMode": "none", "Runtime": "runc", "Privileged": i%50 == 7, "LogConfig": map[string]any{"Type": "json-file", "Config": map[string]string{}}})
		if logPath != "" {
			g.write(cdir+"/"+id+"-json.log", []byte(`{"log":"started\n","stream":"stdout","time":"`+created.Format(time.RFC3339Nano)+`"}`+"\n"))
		}
		mdir := DockerImageStore + "/layerdb/mounts/" + id
		g.write(mdir+"/mount-id", []byte(mount))
		g.write(mdir+"/init-id", []byte(mount+"-init"))
		g.write(mdir+"/parent", []byte(im.chain[2]))
		g.layerDir(mount+"-init", reverse(im.caches))
		g.layerDir(mount, append([]string{mount + "-init"}, reverse(im.caches)...))
		g.mkdir(DockerOverlay + "/" + mount + "/work")
		if g.err != nil {
			return g.err
		}
	}
	return g.err
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}
