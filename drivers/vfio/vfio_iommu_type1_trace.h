/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tracepoints of the VFIO type1 IOMMU backend.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vfio_iommu_type1

#if !defined(_TRACE_VFIO_IOMMU_TYPE1_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_VFIO_IOMMU_TYPE1_H

#include <linux/tracepoint.h>

/*
 * A dirty report reached the user: GET_BITMAP, or UNMAP_DMA with a dirty
 * bitmap (before the range is unmapped).  @dirty is the number of bits
 * the report set, counted as they were written (the user zeroed the
 * bitmap).
 */
TRACE_EVENT(vfio_iommu_type1_dirty_report,
	    TP_PROTO(bool unmap, u64 iova, u64 size, u64 pgsize, u64 dirty),
	    TP_ARGS(unmap, iova, size, pgsize, dirty),
	    TP_STRUCT__entry(__field(bool, unmap)
			     __field(u64, iova)
			     __field(u64, size)
			     __field(u64, pgsize)
			     __field(u64, dirty)),
	    TP_fast_assign(__entry->unmap = unmap;
			   __entry->iova = iova;
			   __entry->size = size;
			   __entry->pgsize = pgsize;
			   __entry->dirty = dirty;),
	    TP_printk("%s iova=0x%llx size=0x%llx pgsize=0x%llx dirty=%llu",
		      __entry->unmap ? "unmap" : "get", __entry->iova,
		      __entry->size, __entry->pgsize, __entry->dirty)
);

#endif /* _TRACE_VFIO_IOMMU_TYPE1_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE vfio_iommu_type1_trace

/* This part must be outside protection */
#include <trace/define_trace.h>
