package storage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"sort"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// bigDataName is the file name containers-storage gives an image's big
// data item: the key itself when it is made of [0-9a-z.], else "=" and
// its base64.
func bigDataName(key string) string {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return "=" + base64.StdEncoding.EncodeToString([]byte(key))
		}
	}
	return key
}

// readImages reads images.json and each image's manifest.
func (s *Store) readImages() {
	file := s.listFile(s.graph, imagesSuffix+"/"+imagesJSON)
	dir := s.listFile(s.graph, imagesSuffix)
	seen := map[string]bool{}
	s.readList(file, func(i int, raw json.RawMessage, at recordAt) {
		im, err := decodeImage(raw)
		if err != nil {
			s.Warnings = append(s.Warnings, at.warnf("record %d: %v", i, err))
			return
		}
		if !pathutil.PlainName(im.ID) {
			s.Warnings = append(s.Warnings, at.warnf("record %d: image id %q is not a plain name", i, im.ID))
			return
		}
		if seen[im.ID] { // as layers.json and containers.json have it
			s.Warnings = append(s.Warnings, at.warnf("image %s listed twice; the first is kept", im.ID))
			return
		}
		seen[im.ID] = true
		rec := ImageRecord{ID: im.ID, Digest: im.Digest, Names: im.Names, TopLayer: im.TopLayer, Created: model.T(im.Created), ManifestSize: im.BigDataSizes[manifestKey], Warnings: []evidence.Warning{}}
		if im.TopLayer != "" {
			var w []evidence.Warning
			rec.Layers, w = s.chain(im.TopLayer)
			for _, x := range w {
				x.Msg = "image " + im.ID + ": " + x.Msg
				rec.Warnings = append(rec.Warnings, x)
			}
		}
		mf := path.Join(dir, im.ID, bigDataName(manifestKey))
		if b, err := evidence.ReadFile(s.src, mf, maxJSON); err == nil {
			var m struct {
				MediaType string `json:"mediaType"`
				Config    struct {
					Digest string `json:"digest"`
				} `json:"config"`
			}
			if err := object(b, &m); err != nil {
				rec.Warnings = append(rec.Warnings, ondisk.Warning("/"+mf, "manifest JSON", err))
			} else {
				rec.ManifestMediaType, rec.ConfigDigest = m.MediaType, m.Config.Digest
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			rec.Warnings = append(rec.Warnings, evidence.Warnf("/"+mf, -1, "%v", err))
		}
		s.Warnings = append(s.Warnings, rec.Warnings...)
		s.ImageRecords = append(s.ImageRecords, rec)
	})
	sort.Slice(s.ImageRecords, func(i, j int) bool { return s.ImageRecords[i].ID < s.ImageRecords[j].ID })
}
