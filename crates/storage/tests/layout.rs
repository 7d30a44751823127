//! Property tests for the layout math: slices tile any block exactly, in file order.

use proptest::prelude::*;
use shoal_storage::{FileEntry, Layout};

proptest! {
    #[test]
    fn slices_tile_every_block(
        lengths in prop::collection::vec(0u64..5000, 1..12),
        piece_length in 1u64..4096,
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..20),
    ) {
        prop_assume!(lengths.iter().sum::<u64>() > 0);
        let files = lengths.iter().enumerate().map(|(i, &len)| FileEntry::new(format!("f{i}"), len)).collect();
        let layout = Layout::new(files, piece_length).unwrap();
        prop_assert_eq!(u64::from(layout.piece_count()), lengths.iter().sum::<u64>().div_ceil(piece_length));
        for (piece, offset, len) in picks {
            let piece = piece.index(layout.piece_count() as usize) as u32;
            let piece_len = layout.piece_len(piece).unwrap() as usize;
            let offset = offset.index(piece_len);
            let len = 1 + len.index(piece_len - offset);
            prop_assert!(layout.check_block(piece, offset as u32, len).is_ok());
            let mut covered = 0;
            let mut last_file = None;
            for slice in layout.slices(piece, offset as u32, len) {
                prop_assert_eq!(slice.range_offset, covered, "contiguous");
                prop_assert!(slice.len > 0);
                let span = &layout.files()[slice.file];
                prop_assert!(slice.file_offset + slice.len as u64 <= span.length());
                // The slice is where the torrent's byte space says it is.
                prop_assert_eq!(
                    span.offset() + slice.file_offset,
                    u64::from(piece) * piece_length + (offset + covered) as u64
                );
                prop_assert!(last_file < Some(slice.file), "files in order, each once");
                last_file = Some(slice.file);
                covered += slice.len;
            }
            prop_assert_eq!(covered, len);
            prop_assert!(layout.check_block(piece, offset as u32, piece_len - offset + 1).is_err());
        }
    }
}
