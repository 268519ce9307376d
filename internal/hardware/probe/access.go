package probe

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"syscall"
)

// AccessSection says who may open the device files the hardware layer opens.
type AccessSection struct {
	UID    int          `json:"uid"`
	User   string       `json:"user"`
	Groups []string     `json:"groups"`
	Files  []DeviceFile `json:"device_files"`
	// Needed are the groups that own the device files with read-write access for the
	// group: the service user must be in each.
	Needed []string `json:"groups_needed"`
	// Lacking are the needed groups the running user is not in (empty for root, who
	// needs none).
	Lacking     []string          `json:"groups_lacking"`
	ServiceUser ServiceUserAccess `json:"service_user"`
	Note        string            `json:"note,omitempty"`
}

// DeviceFile is one device node and who may open it.
type DeviceFile struct {
	Path  string `json:"path"`
	Owner string `json:"owner"`
	Group string `json:"group"`
	Mode  string `json:"mode"`
	// Usable is true when the running user may open it read-write.
	Usable  bool   `json:"usable"`
	Problem string `json:"problem,omitempty"`
}

// ServiceUserAccess is the service user's membership of the needed groups.
type ServiceUserAccess struct {
	Name    string   `json:"name"`
	Exists  bool     `json:"exists"`
	Groups  []string `json:"groups,omitempty"`
	Lacking []string `json:"groups_lacking,omitempty"`
}

// deviceGroups are the device files the periph backend opens and the group Raspberry Pi
// OS's udev rules (99-com.rules) give each of them.
var deviceGroups = []struct{ pattern, group string }{
	{"/dev/gpiomem*", "gpio"},
	{"/dev/gpiochip*", "gpio"},
	{"/dev/i2c-*", "i2c"},
	{"/dev/spidev*", "spi"},
}

func probeAccess(root rootFS, id *Identity) AccessSection {
	groupB, _ := root.read("/etc/group") // missing: names fall back to numbers
	passwdB, _ := root.read("/etc/passwd")
	groups, accounts := parseGroups(groupB), parsePasswd(passwdB)
	groupName := func(gid int) string {
		for _, g := range groups {
			if g.GID == gid {
				return g.Name
			}
		}
		return strconv.Itoa(gid)
	}
	userName := func(uid int) string {
		for _, a := range accounts {
			if a.UID == uid {
				return a.Name
			}
		}
		return strconv.Itoa(uid)
	}

	s := AccessSection{UID: id.UID, User: userName(id.UID), Groups: []string{}, Files: []DeviceFile{}, Needed: []string{}, Lacking: []string{}}
	mine := map[int]bool{}
	for _, g := range id.GIDs {
		if !mine[g] {
			mine[g] = true
			s.Groups = append(s.Groups, groupName(g))
		}
	}
	needed := map[string]bool{}
	for _, dg := range deviceGroups {
		for _, p := range root.glob(dg.pattern) {
			fi, err := os.Stat(root.path(p))
			if err != nil {
				continue
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				continue
			}
			uid, gid, perm := int(st.Uid), int(st.Gid), fi.Mode().Perm()
			f := DeviceFile{Path: p, Owner: userName(uid), Group: groupName(gid), Mode: fmt.Sprintf("%04o", perm)}
			f.Usable = id.UID == 0 || (uid == id.UID && perm&0o600 == 0o600) ||
				(mine[gid] && perm&0o060 == 0o060) || perm&0o006 == 0o006
			switch {
			case perm&0o006 == 0o006:
				// Anyone may open it: no group is needed.
			case perm&0o060 == 0o060 && gid != 0:
				needed[f.Group] = true
				if !f.Usable {
					f.Problem = fmt.Sprintf("not in group %s", f.Group)
				}
			default:
				f.Problem = fmt.Sprintf("only %s can open it: a udev rule is missing (Raspberry Pi OS gives it to group %s, mode 0660)", f.Owner, dg.group)
			}
			s.Files = append(s.Files, f)
		}
	}
	for g := range needed {
		s.Needed = append(s.Needed, g)
	}
	sort.Strings(s.Needed)
	if id.UID != 0 {
		have := map[string]bool{}
		for _, g := range s.Groups {
			have[g] = true
		}
		for _, g := range s.Needed {
			if !have[g] {
				s.Lacking = append(s.Lacking, g)
			}
		}
	}

	s.ServiceUser = ServiceUserAccess{Name: ServiceUser}
	for _, a := range accounts {
		if a.Name != ServiceUser {
			continue
		}
		s.ServiceUser.Exists = true
		in := map[string]bool{groupName(a.GID): true}
		for _, g := range groups {
			for _, m := range g.Members {
				if m == ServiceUser {
					in[g.Name] = true
				}
			}
		}
		for g := range in {
			s.ServiceUser.Groups = append(s.ServiceUser.Groups, g)
		}
		sort.Strings(s.ServiceUser.Groups)
		for _, g := range s.Needed {
			if !in[g] {
				s.ServiceUser.Lacking = append(s.ServiceUser.Lacking, g)
			}
		}
		break
	}
	if len(s.Files) == 0 {
		s.Note = "none found: no /dev/gpiomem*, /dev/gpiochip*, /dev/i2c-* or /dev/spidev*: no group is needed until a bus is enabled (1-Wire and the thermal zones need none)"
	}
	return s
}
