package queue

import (
	"go.uber.org/zap"
)

// refreshCapacity measures the file system's free space and sets the effective limit:
// max_size, or less when MaxFreeShare caps the queue at a share of the space it could have
// (what is free plus what the queue already holds, so its own growth does not shrink its
// limit). A failed measurement keeps the last limit.
func (q *Queue) refreshCapacity() {
	free, err := q.cfg.FreeBytes(q.cfg.Dir)
	if err != nil {
		if !q.freeUnknown {
			q.freeUnknown = true
			q.cfg.Logger.Warn("Disk queue cannot measure the free space of its file system", zap.String("directory", q.cfg.Dir), zap.Error(err))
		}
		return
	}
	q.freeUnknown = false
	limit := q.cfg.MaxSize
	if q.cfg.MaxFreeShare > 0 {
		limit = min(limit, int64(q.cfg.MaxFreeShare*float64(free+q.log.Size())))
	}
	q.free.Store(free)
	q.limit.Store(limit)
}
