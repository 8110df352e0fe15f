package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"sort"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/model"
)

// imageStore is the storage driver's image store: image/<driver>.
func (s *Store) imageStore() string { return path.Join(s.root, imageDir, s.Driver) }

// readImages reads repositories.json and imagedb: every image config, by
// the names that refer to it.
func (s *Store) readImages() {
	store := s.imageStore()
	names := map[string][]string{}
	repoFile := path.Join(store, repositoriesFile)
	if b, err := evidence.ReadFile(s.src, repoFile, maxJSON); err == nil {
		repos, err := decodeRepositories(b)
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() { // one a bad reference, the others kept
				s.Warnings = append(s.Warnings, evidence.Warnf("/"+repoFile, -1, "%v", e))
			}
		} else if err != nil {
			s.Warnings = append(s.Warnings, ondisk.Warning("/"+repoFile, "repositories JSON", err))
		}
		for _, refs := range repos {
			for ref, id := range refs {
				if !validDigest(id) {
					s.Warnings = append(s.Warnings, evidence.Warnf("/"+repoFile, -1, "%s names %q, not an image id", ref, id))
					continue
				}
				names[id] = append(names[id], ref)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.Warnings = append(s.Warnings, evidence.Warnf("/"+repoFile, -1, "%v", err))
	}
	dir := path.Join(store, imageDBContent)
	ents, warns := ondisk.List(s.src, dir, maxEntries, "images")
	s.Warnings = append(s.Warnings, warns...)
	seen := map[string]bool{}
	for _, e := range ents {
		name := path.Base(e.Name)
		if !e.Mode.IsRegular() || !validHex(name) {
			continue
		}
		id := "sha256:" + name
		seen[id] = true
		s.readImageConfig(path.Join(dir, name), id, names[id])
	}
	for id, ns := range names {
		if seen[id] {
			continue
		}
		ic := ImageConfig{ID: id, Names: ns, Warnings: []evidence.Warning{evidence.Warnf("", -1, "image %s is named in /%s but its config is not in /%s", id, repoFile, dir)}}
		sort.Strings(ic.Names)
		s.Warnings = append(s.Warnings, ic.Warnings...)
		s.addImage(ic)
	}
	sort.Slice(s.ImageConfigs, func(i, j int) bool { return s.ImageConfigs[i].ID < s.ImageConfigs[j].ID })
	sort.Slice(s.Images, func(i, j int) bool {
		if s.Images[i].Name != s.Images[j].Name {
			return s.Images[i].Name < s.Images[j].Name
		}
		return s.Images[i].Target.Digest < s.Images[j].Target.Digest
	})
}

func (s *Store) readImageConfig(file, id string, names []string) {
	ic := ImageConfig{ID: id, Names: names, Warnings: []evidence.Warning{}}
	sort.Strings(ic.Names)
	b, err := evidence.ReadFile(s.src, file, maxJSON)
	if err != nil {
		ic.Warnings = append(ic.Warnings, evidence.Warnf("/"+file, -1, "%v", err))
	} else {
		ic.Size = int64(len(b))
		if h := sha256.Sum256(b); "sha256:"+hex.EncodeToString(h[:]) != id {
			ic.Warnings = append(ic.Warnings, evidence.Warnf("/"+file, -1, "content digest is sha256:%x, not the image id: the config was altered", h))
		}
		c, err := decodeImageConfig(b)
		if err != nil {
			ic.Warnings = append(ic.Warnings, ondisk.Warning("/"+file, "image config JSON", err))
		} else {
			ic.Created = model.T(c.Created)
			ic.Architecture, ic.OS = c.Architecture, c.OS
			ic.User, ic.Env, ic.Entrypoint, ic.Cmd = c.Config.User, c.Config.Env, c.Config.Entrypoint, c.Config.Cmd
			ic.WorkingDir, ic.Labels = c.Config.WorkingDir, c.Config.Labels
			for _, d := range c.RootFS.DiffIDs {
				if !validDigest(d) {
					ic.Warnings = append(ic.Warnings, evidence.Warnf("/"+file, -1, "diff_id %q is not a sha256 digest; chain ids stop there", d))
					break
				}
				ic.DiffIDs = append(ic.DiffIDs, d)
			}
			ic.ChainIDs = chainIDs(ic.DiffIDs)
			for _, h := range c.History {
				ic.History = append(ic.History, History{Created: model.T(h.Created), CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer})
			}
			for _, ch := range ic.ChainIDs {
				if s.byChain[ch] == nil {
					ic.Warnings = append(ic.Warnings, evidence.Warnf("", -1, "layer %s of image %s is not in layerdb", ch, id))
				}
			}
		}
	}
	s.Warnings = append(s.Warnings, ic.Warnings...)
	s.addImage(ic)
}

func (s *Store) addImage(ic ImageConfig) {
	s.ImageConfigs = append(s.ImageConfigs, ic)
	names := ic.Names
	if len(names) == 0 {
		names = []string{ic.ID} // dangling: shown by its id, as "docker images" shows <none>
	}
	for _, n := range names {
		s.Images = append(s.Images, model.Image{
			Runtime:   model.RuntimeDocker,
			Namespace: Namespace,
			Name:      n,
			Target:    model.Descriptor{Digest: ic.ID, MediaType: mediaTypeImageConfig, Size: ic.Size},
			Meta:      model.Meta{CreatedAt: ic.Created, Labels: ic.Labels},
			Warnings:  ic.Warnings,
		})
	}
}
